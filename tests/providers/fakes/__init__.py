"""Fakes of live vendors' wire protocols, served over loopback in the tests."""
