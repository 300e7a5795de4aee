"""Which addresses may receive outgoing webhooks: the pure rule, without DNS or a database."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelforge.domain.errors import InputError
from reelforge.domain.webhooks import (
    check_url,
    is_local_name,
    is_private_host,
    is_public_address,
    literal_address,
)

# One or more of every class the rule refuses, as a URL would write the host.
REFUSED_HOSTS = [
    "127.0.0.1",  # loopback
    "127.8.9.10",
    "[::1]",
    "10.0.0.5",  # private
    "172.16.3.4",
    "192.168.1.1",
    "[fd00::1]",
    "100.64.0.1",  # shared (CGNAT)
    "169.254.169.254",  # link-local: cloud metadata
    "[fe80::1]",
    "224.0.0.1",  # multicast, local and global scope
    "224.0.1.1",
    "[ff02::1]",
    "[ff0e::1]",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "0.0.0.0",  # unspecified
    "[::]",
    "192.0.2.1",  # documentation
    "[2001:db8::1]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:10.0.0.5]",
    "[::ffff:169.254.169.254]",
    "[2002:7f00:1::1]",  # 6to4 around 127.0.0.1
    "[64:ff9b::a00:5]",  # NAT64 around 10.0.0.5
    "127.1",  # forms the resolver reads as IPv4
    "2130706433",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "localhost",
    "LOCALHOST.",
    "api.localhost",
]

ALLOWED_HOSTS = [
    "8.8.8.8",
    "93.184.216.34",
    "[2606:4700:4700::1111]",
    "[::ffff:8.8.8.8]",
    "[64:ff9b::808:808]",
    "hooks.example.org",
    "localhost.example.org",  # only names under `localhost` are local
    "1e100.net",
    # Names are judged by what they resolve to, at delivery.
    "internal.corp",
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_non_public_hosts_are_refused_naming_url_and_the_setting(host: str) -> None:
    assert is_private_host(host)
    with pytest.raises(InputError) as refused:
        check_url(f"http://{host}:8080/hook")
    assert refused.value.field == "url"
    assert "public" in refused.value.message
    assert "REELFORGE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES" in refused.value.message


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_the_setting_lets_non_public_hosts_through(host: str) -> None:
    url = f"https://{host}/hook"
    assert check_url(url, allow_private_addresses=True) == url


@pytest.mark.parametrize("host", ALLOWED_HOSTS)
def test_public_addresses_and_names_are_accepted(host: str) -> None:
    assert not is_private_host(host)
    assert check_url(f"https://{host}/hook") == f"https://{host}/hook"


def test_local_names() -> None:
    assert is_local_name("localhost")
    assert is_local_name("Web.LocalHost.")
    assert not is_local_name("localhost.example.org")
    assert not is_local_name("mylocalhost")


def test_literal_addresses_include_what_the_resolver_reads_as_ipv4() -> None:
    assert literal_address("[::1]") == IPv6Address("::1")
    assert literal_address("127.1") == IPv4Address("127.0.0.1")
    assert literal_address("0x7f000001") == IPv4Address("127.0.0.1")
    assert literal_address("10.1") == IPv4Address("10.0.0.1")
    assert literal_address("hooks.example.org") is None
    assert literal_address("1.2.3.4.5") is None


@given(st.ip_addresses())
def test_a_public_address_is_a_global_unicast_one(address: IPv4Address | IPv6Address) -> None:
    if is_public_address(address):
        assert address.is_global
        assert not address.is_multicast
        assert not address.is_loopback
        assert not address.is_link_local


@given(st.ip_addresses(v=4))
def test_ipv4_in_ipv6_gets_the_same_verdict(address: IPv4Address) -> None:
    verdict = is_public_address(address)
    assert is_public_address(ip_address(f"::ffff:{address}")) == verdict
    if not verdict:
        sixtofour = IPv6Address((0x2002 << 112) | (int(address) << 80) | 1)
        assert not is_public_address(sixtofour)


@given(st.ip_addresses(v=4))
def test_registration_agrees_with_the_rule_for_every_ipv4_address(address: IPv4Address) -> None:
    url = f"http://{address}/hook"
    if is_public_address(address):
        assert check_url(url) == url
    else:
        with pytest.raises(InputError, match=r"^url: must be a public"):
            check_url(url)
    # The same address written as one number is the same address to the resolver.
    assert literal_address(str(int(address))) == address
    assert is_private_host(str(int(address))) == (not is_public_address(address))


@given(st.ip_addresses(v=6))
def test_registration_agrees_with_the_rule_for_every_ipv6_address(address: IPv6Address) -> None:
    url = f"http://[{address}]/hook"
    if is_public_address(address):
        assert check_url(url) == url
    else:
        with pytest.raises(InputError):
            check_url(url)
