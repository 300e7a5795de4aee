"""Several providers at once: a create goes to the provider of its model; re-running a video's
prompt on another model; a model that cannot do what was asked answers a 400 naming the field."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import update

from reelforge.bus import LocalBus
from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain.accounts import Account
from reelforge.domain.errors import InputError, NotFoundError
from reelforge.domain.routing import Routes
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.videos import NewVideo, Videos
from reelforge.storage import open_storage
from tests.support.engine import ledger_of

pytestmark = pytest.mark.anyio

KLING = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
LTX = "fal-ai/ltx-2.3/text-to-video"


@pytest.fixture
def routed(database: Database) -> Videos:
    return Videos(
        database,
        open_storage("memory://"),
        Routes.of(["emulator", "fal", "veo"]),
        Lifecycle(database, LocalBus()),
        max_prompt_length=1000,
    )


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return buffer.getvalue()


async def test_the_model_picks_the_provider(routed: Videos, ada: Account) -> None:
    default, _ = await routed.create(ada, NewVideo(prompt="fox"))
    veo, _ = await routed.create(ada, NewVideo(prompt="fox", model="veo-3.1"))
    fal, _ = await routed.create(ada, NewVideo(prompt="fox", model="fal-ai/veo3.1"))

    assert (default.provider, default.model) == ("emulator", "sora-2")
    assert (veo.provider, veo.seconds, veo.size) == ("veo", "8", "1280x720")
    assert fal.provider == "fal"


async def test_an_unknown_model_names_every_configured_model(routed: Videos, ada: Account) -> None:
    with pytest.raises(InputError) as caught:
        await routed.create(ada, NewVideo(prompt="fox", model="runway-gen4"))
    assert caught.value.field == "model"
    assert "'veo-3.1'" in caught.value.message
    assert f"'{KLING}'" in caught.value.message
    assert "'sora-2'" in caught.value.message


@pytest.mark.parametrize(
    ("new", "field", "wording"),
    [
        (NewVideo(prompt="fox", model=KLING, seconds="8"), "seconds", "'5' and '10'"),
        (NewVideo(prompt="fox", model=LTX, size="1280x720"), "size", "'1920x1080' and '1080x1920'"),
        (
            NewVideo(prompt="fox", model=LTX, input_reference=png(1920, 1080)),
            "input_reference",
            "cannot do image_input",
        ),
    ],
)
async def test_what_a_model_cannot_do_is_a_400_naming_the_field(
    routed: Videos, ada: Account, database: Database, new: NewVideo, field: str, wording: str
) -> None:
    with pytest.raises(InputError) as caught:
        await routed.create(ada, new)
    assert caught.value.field == field
    assert wording in caught.value.message


async def test_a_model_without_remix_refuses_one(
    routed: Videos, ada: Account, database: Database
) -> None:
    parent, _ = await routed.create(ada, NewVideo(prompt="fox", model="veo-3.1"))
    await _complete(database, parent.id)
    with pytest.raises(InputError) as caught:
        await routed.remix(ada, parent.id, "make it night")
    assert caught.value.field == "video_id"
    assert "veo-3.1 cannot do remix" in caught.value.message


async def test_rerun_makes_the_same_request_on_another_model(
    routed: Videos, ada: Account, database: Database
) -> None:
    source, _ = await routed.create(
        ada, NewVideo(prompt="a tram in fog", model="veo-3.1", size="720x1280", seconds="6")
    )

    again, created = await routed.rerun(ada, source.id, "fal-ai/veo3.1")

    assert created
    assert again.id != source.id
    assert (again.provider, again.model) == ("fal", "fal-ai/veo3.1")
    assert (again.prompt, again.size, again.seconds) == ("a tram in fog", "720x1280", "6")
    assert [kind for kind, _ in await ledger_of(database, again.id)] == ["reserve"]


async def test_rerun_takes_the_first_frame_along(routed: Videos, ada: Account) -> None:
    source, _ = await routed.create(
        ada,
        NewVideo(prompt="a tram", model="veo-3.1", size="1280x720", input_reference=png(1280, 720)),
    )
    again, _ = await routed.rerun(ada, source.id, "fal-ai/veo3.1")
    assert again.provider == "fal"
    with pytest.raises(InputError) as caught:
        await routed.rerun(ada, source.id, "fal-ai/veo3/fast")
    assert caught.value.field == "input_reference"


async def test_rerun_checks_the_target_model(routed: Videos, ada: Account) -> None:
    source, _ = await routed.create(ada, NewVideo(prompt="fox", model="veo-3.1", seconds="4"))
    with pytest.raises(InputError) as caught:
        await routed.rerun(ada, source.id, KLING)
    assert (caught.value.field, caught.value.value) == ("seconds", "4")  # type: ignore[attr-defined]
    with pytest.raises(InputError) as missing:
        await routed.rerun(ada, source.id, "")
    assert missing.value.field == "model"


async def test_rerun_of_someone_elses_video_is_not_found(
    routed: Videos, ada: Account, bob: Account
) -> None:
    source, _ = await routed.create(ada, NewVideo(prompt="fox", model="veo-3.1"))
    with pytest.raises(NotFoundError):
        await routed.rerun(bob, source.id, "veo-3.1-fast")


async def _complete(database: Database, video_id: str) -> None:
    async with database.session() as session, session.begin():
        await session.execute(
            update(Video).where(Video.id == video_id).values(job_state="completed", progress=100)
        )
