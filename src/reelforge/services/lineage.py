"""A video's lineage: the chain of parents it was remixed from and every remix below its root."""

from __future__ import annotations

from dataclasses import dataclass, field

from reelforge.db import lineage as queries
from reelforge.db.engine import Database
from reelforge.db.videos import visible_view
from reelforge.domain.accounts import Account
from reelforge.domain.errors import NotFoundError
from reelforge.domain.videos import VideoView

# A lineage is for people to read: past these sizes it is cut, not paged.
MAX_DEPTH = 12
MAX_NODES = 200


@dataclass
class LineageNode:
    video: VideoView
    children: list[LineageNode] = field(default_factory=list)


@dataclass(frozen=True)
class Lineage:
    """The tree from the oldest visible ancestor down, and the videos in it in tree order."""

    root: LineageNode
    focus_id: str
    truncated: bool

    def videos(self) -> list[VideoView]:
        ordered: list[VideoView] = []
        stack = [self.root]
        while stack:
            node = stack.pop()
            ordered.append(node.video)
            stack.extend(reversed(node.children))
        return ordered


class Lineages:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def of(self, account: Account, video_id: str) -> Lineage:
        """The lineage of a video the account can see; others' videos are not found."""
        scope = None if account.is_admin else account.id
        async with self._database.reading() as connection:
            video = await visible_view(connection, video_id, scope)
            if video is None:
                raise NotFoundError("video", video_id)
            parents = await queries.ancestors(connection, video, scope, MAX_DEPTH)
            root = LineageNode(parents[-1] if parents else video)
            nodes = {root.video.id: root}
            frontier = [root.video.id]
            truncated = False
            for _ in range(MAX_DEPTH):
                if not frontier:
                    break
                room = MAX_NODES - len(nodes)
                remixes = await queries.remixes_of(connection, frontier, scope, room + 1)
                if len(remixes) > room:
                    truncated, remixes = True, remixes[:room]
                frontier = []
                for remix in remixes:
                    node = LineageNode(remix)
                    nodes[remix.id] = node
                    parent = remix.remixed_from_video_id
                    if parent is not None and parent in nodes:
                        nodes[parent].children.append(node)
                    frontier.append(remix.id)
            else:
                truncated = truncated or bool(frontier)
        return Lineage(root=root, focus_id=video_id, truncated=truncated)
