"""Skeleton definitions as data: keypoint names, links, left/right flip pairs, subsets.

A skeleton is a YAML file (see ``skeletons/*.yaml``) in the spirit of mmpose's
dataset meta-information: links and flip pairs are written with keypoint *names* so
files stay readable and one skeleton's data can be mapped onto another by name.
Built-in skeletons are found by name; a user's own file by path; a COCO
``categories`` entry through :meth:`Skeleton.from_coco_category`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from ..errors import KeypointGANError

_BUILTIN_DIR = Path(__file__).with_name("skeletons")

Edge = tuple[int, int]


class SkeletonError(KeypointGANError, ValueError):
    """A skeleton definition is malformed, or keypoints do not fit a skeleton."""


@dataclass(frozen=True)
class Skeleton:
    """An object category's keypoints and how they connect.

    ``edges`` are the links that the renderer beta draws (the active link set);
    ``link_sets`` holds every named alternative. ``subsets`` are named index lists
    (e.g. the 17 evaluation joints of Human3.6M, the outer eye corners of a face).
    """

    name: str
    keypoint_names: tuple[str, ...]
    edges: tuple[Edge, ...]
    flip_pairs: tuple[Edge, ...] = ()
    subsets: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    link_sets: Mapping[str, tuple[Edge, ...]] = field(default_factory=dict)
    source: str = "<memory>"

    def __post_init__(self) -> None:
        k = len(self.keypoint_names)
        if k < 2:
            raise SkeletonError(f"{self.source}: a skeleton needs at least 2 keypoints, got {k}")
        if len(set(self.keypoint_names)) != k:
            dup = sorted({n for n in self.keypoint_names if self.keypoint_names.count(n) > 1})
            raise SkeletonError(f"{self.source}: duplicate keypoint names {dup}")
        if not self.edges:
            raise SkeletonError(f"{self.source}: a skeleton needs at least one link to draw")
        for what, pairs in (("link", self.edges), ("flip pair", self.flip_pairs)):
            for i, j in pairs:
                if not (0 <= i < k and 0 <= j < k):
                    raise SkeletonError(f"{self.source}: {what} ({i}, {j}) is out of range for {k} keypoints")
        for sname, idx in self.subsets.items():
            bad = [i for i in idx if not 0 <= i < k]
            if bad:
                raise SkeletonError(f"{self.source}: subset '{sname}' has out-of-range indices {bad}")

    # -- basic facts -------------------------------------------------------------
    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def index(self, name: str) -> int:
        """Index of a keypoint by name (clear error when unknown)."""
        try:
            return self.keypoint_names.index(name)
        except ValueError:
            raise SkeletonError(
                f"skeleton '{self.name}' has no keypoint '{name}'; known: {', '.join(self.keypoint_names)}"
            ) from None

    def flip_permutation(self) -> list[int]:
        """Permutation that swaps every left/right pair (identity elsewhere)."""
        perm = list(range(self.num_keypoints))
        for i, j in self.flip_pairs:
            perm[i], perm[j] = j, i
        return perm

    def subset(self, name: str) -> tuple[int, ...]:
        if name not in self.subsets:
            raise SkeletonError(
                f"skeleton '{self.name}' has no subset '{name}'; known: {sorted(self.subsets) or 'none'}"
            )
        return self.subsets[name]

    def with_links(self, link_set: str) -> "Skeleton":
        """The same skeleton drawing another named link set."""
        if link_set not in self.link_sets:
            raise SkeletonError(
                f"skeleton '{self.name}' has no link set '{link_set}'; known: {sorted(self.link_sets)}"
            )
        return Skeleton(self.name, self.keypoint_names, self.link_sets[link_set], self.flip_pairs,
                        self.subsets, self.link_sets, self.source)

    def check_keypoints(self, shape: Sequence[int], where: str = "keypoints") -> None:
        """Raise a clear error unless ``shape`` is ``(..., K, 2)`` or ``(..., K, 3)`` for this K."""
        if len(shape) < 2 or shape[-1] not in (2, 3) or shape[-2] != self.num_keypoints:
            raise SkeletonError(
                f"{where}: expected (..., {self.num_keypoints}, 2) keypoints for skeleton "
                f"'{self.name}', got shape {tuple(shape)}"
            )

    # -- conversion --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form (names, not indices), as written by :func:`save_skeleton`."""
        n = self.keypoint_names
        d: dict[str, Any] = {
            "name": self.name,
            "keypoints": list(n),
            "links": [[n[i], n[j]] for i, j in self.edges],
            "flip_pairs": [[n[i], n[j]] for i, j in self.flip_pairs],
        }
        if self.link_sets:
            d["link_sets"] = {k: [[n[i], n[j]] for i, j in v] for k, v in self.link_sets.items()}
        if self.subsets:
            d["subsets"] = {k: [n[i] for i in v] for k, v in self.subsets.items()}
        return d

    def to_coco_category(self, category_id: int = 1) -> dict[str, Any]:
        """A COCO ``categories`` entry (skeleton links are 1-based, as COCO writes them)."""
        return {
            "id": category_id,
            "name": self.name,
            "supercategory": self.name,
            "keypoints": list(self.keypoint_names),
            "skeleton": [[i + 1, j + 1] for i, j in self.edges],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<memory>") -> "Skeleton":
        """Build from the YAML/JSON form; links may name keypoints or give 0-based indices."""
        if not isinstance(d, Mapping):
            raise SkeletonError(f"{source}: expected a mapping at the top level, got {type(d).__name__}")
        for key in ("name", "keypoints"):
            if key not in d:
                raise SkeletonError(f"{source}: missing required field '{key}'")
        names = tuple(str(x) for x in d["keypoints"])
        lookup = {nm: i for i, nm in enumerate(names)}

        def ref(x: Any) -> int:
            if isinstance(x, bool):
                raise SkeletonError(f"{source}: bad keypoint reference {x!r}")
            if isinstance(x, int):
                return x
            if str(x) not in lookup:
                raise SkeletonError(f"{source}: unknown keypoint name '{x}' (known: {', '.join(names)})")
            return lookup[str(x)]

        def pairs(items: Iterable[Any], what: str) -> tuple[Edge, ...]:
            out = []
            for p in items or ():
                if not isinstance(p, (list, tuple)) or len(p) != 2:
                    raise SkeletonError(f"{source}: each {what} must be a pair, got {p!r}")
                out.append((ref(p[0]), ref(p[1])))
            return tuple(out)

        link_sets = {str(k): pairs(v, "link") for k, v in (d.get("link_sets") or {}).items()}
        links = d.get("links")
        if links is None:
            default = d.get("default_link_set")
            if default is None or default not in link_sets:
                raise SkeletonError(f"{source}: give 'links', or 'default_link_set' naming one of 'link_sets'")
            edges = link_sets[default]
        elif isinstance(links, str):
            if links not in link_sets:
                raise SkeletonError(f"{source}: links '{links}' is not one of link_sets {sorted(link_sets)}")
            edges = link_sets[links]
        else:
            edges = pairs(links, "link")
        subsets = {str(k): tuple(ref(x) for x in v) for k, v in (d.get("subsets") or {}).items()}
        return cls(str(d["name"]), names, edges, pairs(d.get("flip_pairs"), "flip pair"),
                   subsets, link_sets, source)

    @classmethod
    def from_coco_category(cls, cat: Mapping[str, Any], source: str = "<coco>",
                           flip_pairs: Sequence[Sequence[str]] = ()) -> "Skeleton":
        """From a COCO ``categories`` entry (1-based ``skeleton`` links).

        Left/right pairs are not part of COCO; unless given, they are guessed from
        names that differ only by a left/right marker (``left_``/``right_``, ``l_``/``r_``).
        """
        if "keypoints" not in cat or "skeleton" not in cat:
            raise SkeletonError(f"{source}: a COCO category needs 'keypoints' and 'skeleton'")
        names = [str(n) for n in cat["keypoints"]]
        k = len(names)
        links = []
        for p in cat["skeleton"]:
            i, j = int(p[0]) - 1, int(p[1]) - 1
            if not (0 <= i < k and 0 <= j < k):
                raise SkeletonError(f"{source}: COCO skeleton link {list(p)} is out of range 1..{k}")
            links.append([i, j])
        flips = [list(p) for p in flip_pairs] or _guess_flip_pairs(names)
        return cls.from_dict({"name": cat.get("name", "coco"), "keypoints": names, "links": links,
                              "flip_pairs": flips}, source)


_LR = (("left_", "right_"), ("l_", "r_"), ("left", "right"))


def _guess_flip_pairs(names: Sequence[str]) -> list[list[str]]:
    found, have = [], set(names)
    for n in names:
        for left, right in _LR:
            if n.startswith(left) and right + n[len(left):] in have:
                found.append([n, right + n[len(left):]])
                break
    return found


def load_skeleton(path: str | Path) -> Skeleton:
    """Load a skeleton from a YAML or JSON file (a COCO file's first category also works)."""
    p = Path(path)
    if not p.is_file():
        raise SkeletonError(f"{p}: skeleton file not found")
    try:
        text = p.read_text()
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise SkeletonError(f"{p}: cannot parse skeleton file: {e}") from None
    if isinstance(data, dict) and "categories" in data and "keypoints" not in data:
        cats = data["categories"]
        if not cats:
            raise SkeletonError(f"{p}: COCO file has no categories")
        return Skeleton.from_coco_category(cats[0], source=str(p))
    return Skeleton.from_dict(data, source=str(p))


def save_skeleton(skeleton: Skeleton, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(skeleton.to_dict(), sort_keys=False))


def list_skeletons() -> list[str]:
    """Names of the built-in skeletons."""
    return sorted(p.stem for p in _BUILTIN_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def _builtin(name: str) -> Skeleton:
    return load_skeleton(_BUILTIN_DIR / f"{name}.yaml")


def get_skeleton(spec: str | Path | Skeleton, link_set: str | None = None) -> Skeleton:
    """A skeleton by built-in name (``"h36m"``) or file path, optionally with a link set.

    ``"h36m:full"`` is shorthand for ``get_skeleton("h36m", link_set="full")``.
    """
    if isinstance(spec, Skeleton):
        sk = spec
    else:
        s = str(spec)
        if link_set is None and ":" in s and not Path(s).exists():
            s, link_set = s.split(":", 1)
        if s in list_skeletons():
            sk = _builtin(s)
        elif Path(s).suffix in (".yaml", ".yml", ".json") or Path(s).exists():
            sk = load_skeleton(s)
        else:
            raise SkeletonError(f"unknown skeleton '{s}': not a built-in ({', '.join(list_skeletons())}) "
                                f"and not a file")
    return sk.with_links(link_set) if link_set else sk


def name_mapping(src: Skeleton, dst: Skeleton, aliases: Mapping[str, str] | None = None) -> list[tuple[int, int]]:
    """Pairs (src index, dst index) of keypoints with the same name (after ``aliases``: src->dst)."""
    aliases = dict(aliases or {})
    pairs = []
    for i, n in enumerate(src.keypoint_names):
        m = aliases.get(n, n)
        if m in dst.keypoint_names:
            pairs.append((i, dst.keypoint_names.index(m)))
    return pairs
