"""A resumable run: its key, its state, its record, and for a frame loop (zoom, video) the folder of all three.

Every resumable run is keyed by :func:`run_key`, a hash of what decides
its pixels (parameters, seed, input, net files). It leaves:

* a state (``.npz``): the key, the last step done (an octave, a frame),
  that step's arrays and the generator's state, written atomically after
  each step and removed once the run is over;
* a record (JSON): the run's metadata with its key and parameters. A dream
  keeps it in its output (see :mod:`.record`); a frame loop keeps it in its
  folder as ``KIND.json``, beside ``.KIND-state.npz`` and the frames.

Before any work, the files a run will write are checked against those it
reads (:class:`RunFiles`), and a second run writing the same output is
refused while the first holds its lock (:func:`output_lock`).

A state or record that cannot be used -- empty, truncated, not an .npz or
JSON, wrong keys, a step or shape this run does not have, a generator
state numpy would misread -- is never trusted and never deleted: it is set
aside (``NAME.bad-<sha1>``, or ``NAME.old-<sha1>`` for a state of other
settings), a note says so, and the run starts over. Frames whose run cannot
be known are never mixed with new ones: the run is refused instead.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import itertools
import json
import math
import os
import stat
import sys
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import DeepDreamError, one_line
from ..io.atomic import atomic_json, atomic_output, fit_name, os_reason
from ..io.files import MAX_RECORD_BYTES, open_regular, read_regular, set_aside
from ..io.image import save_image

Note = Callable[[str], None]
Arrays = Dict[str, np.ndarray]
DreamFn = Callable[[np.ndarray, np.random.RandomState], np.ndarray]
CarryFn = Callable[[Optional[np.ndarray], Optional[Arrays]], np.ndarray]  # (frame, last state) -> dream input
_MT_LEN = 624  # MT19937's state words
_KEY_BYTES = 4 * 40 + 64  # a sha1 as a numpy string, and its .npy header
_RNG_LIMITS = {"keys": 4 * _MT_LEN, "pos": 8, "has_gauss": 8, "cached": 8}
TOOL = "deepdream-caffe"  # every record this tool writes says so in its "tool" field


def run_key(params: Dict[str, Any], seed: Optional[int], input_sha1: Optional[str], **more: Any) -> str:
    """The key of a run: a hash of what decides its pixels (``more``: the net's hashes, the input's shape...)."""
    parts = {"params": params, "seed": seed, "input": input_sha1, **more}
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def run_files(kind: str) -> Tuple[str, str]:
    """The names of a frame loop's record and state in its folder: ``KIND.json``, ``.KIND-state.npz``."""
    return f"{kind}.json", f".{kind}-state.npz"


def stderr_note(message: str) -> None:
    print(one_line(message), file=sys.stderr)


class UnusableState(Exception):
    """A state or record file that cannot be used; the message says why."""


# ---------------------------------------------------------------- the state


def _read_npz(path: Path, limits: Dict[str, int]) -> Arrays:
    """The arrays ``limits`` names from an .npz, each at most its limit in bytes, or UnusableState.

    Member sizes are checked in the zip directory before anything is
    decompressed, so a crafted state cannot make the run allocate more than
    its own data needs; pickled objects are refused (numpy's default).
    """
    try:
        f = open_regular(path, "state file")  # never read whole: its members are checked first
    except DeepDreamError as e:
        raise UnusableState(str(e)) from None
    with f:
        try:
            with zipfile.ZipFile(f) as zf:
                sizes = {i.filename: i.file_size for i in zf.infolist()}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise UnusableState(f"not a readable .npz ({e or type(e).__name__})") from None
        missing = sorted(k for k in limits if f"{k}.npy" not in sizes)
        if missing:
            raise UnusableState(f"it lacks {', '.join(missing)}")
        for k, limit in limits.items():
            if sizes[f"{k}.npy"] > limit + 4096:  # + room for the .npy header
                raise UnusableState(f"its '{k}' is larger than this run's data")
        try:
            f.seek(0)
            with np.load(f, allow_pickle=False) as z:
                return {k: z[k] for k in limits}
        except Exception as e:  # noqa: BLE001 - truncated members raise zlib, zipfile, EOF and value errors
            raise UnusableState(f"it does not read ({type(e).__name__}: {e})") from None


def _scalar(arrays: Arrays, key: str, kind: str) -> Any:
    """A 0-d array of dtype kind ``kind`` ("i", "f", "U") as a Python value, or UnusableState."""
    a = arrays[key]
    if a.shape != () or (a.dtype.kind not in (kind + ("u" if kind == "i" else ""))):
        raise UnusableState(f"its '{key}' is not a single {dict(i='integer', f='number', U='string')[kind]}")
    return a.item()


def _rng_state(arrays: Arrays) -> Tuple[str, np.ndarray, int, int, float]:
    """A MT19937 state numpy accepts and reads within bounds (it trusts ``pos`` without checking it)."""
    keys = arrays["keys"]
    if keys.shape != (_MT_LEN,) or keys.dtype.kind not in "ui" or keys.min() < 0 or keys.max() >= 2**32:
        raise UnusableState("its generator state is not 624 32-bit words")
    pos = _scalar(arrays, "pos", "i")
    has_gauss = _scalar(arrays, "has_gauss", "i")
    cached = float(_scalar(arrays, "cached", "f"))
    if not 0 <= pos <= _MT_LEN or has_gauss not in (0, 1) or not math.isfinite(cached):
        raise UnusableState("its generator state is out of range")
    return "MT19937", keys.astype(np.uint32), int(pos), int(has_gauss), cached


class StateFile:
    """A run's state in one ``.npz``: after each step, that step's arrays and the generator, under the run's key.

    ``seed`` is stored with it so a later run without a seed can continue
    this one (:meth:`saved_seed`). ``note`` hears about a state that was
    set aside (default: a line on stderr). ``last`` is the last step on
    disk, loaded or saved by this run.
    """

    def __init__(self, path: os.PathLike, key: str, seed: Optional[int] = None, note: Optional[Note] = None) -> None:
        self.path, self.key, self.seed = Path(path), key, seed
        self.note = note or stderr_note
        self.last: Optional[int] = None

    def peek(self) -> Tuple[Optional[str], Optional[int]]:
        """(key, seed) of the state on disk, each None where there is none or it does not read.

        Reads only those two small members; the file is left as it is.
        """
        if not self.path.exists():
            return None, None
        try:
            key = _scalar(_read_npz(self.path, {"key": _KEY_BYTES}), "key", "U")
        except UnusableState:
            return None, None
        try:
            seed = int(_scalar(_read_npz(self.path, {"seed": 8}), "seed", "i"))
        except UnusableState:
            return key, None
        return key, (seed if 0 <= seed < 2**32 else None)

    def saved_seed(self) -> Optional[int]:
        """The seed of the run that left this state, or None (no state, or one that does not read)."""
        return self.peek()[1]

    def read(self, rng: np.random.RandomState, limits: Dict[str, int],
             check: Callable[[int, Arrays], None]) -> Optional[Tuple[int, Arrays]]:
        """(last step done, its arrays), restoring ``rng``; or None to start over.

        ``limits`` name the step's arrays and their largest size in bytes;
        each must be a finite float32 array, and ``check(step, arrays)``
        raises UnusableState for a step or shape this run does not have.
        """
        if not os.path.lexists(self.path):
            return None
        try:
            z = _read_npz(self.path, {"key": _KEY_BYTES, "step": 8, **limits, **_RNG_LIMITS})
            if _scalar(z, "key", "U") != self.key:
                self._set_aside("old", "it was made with other settings or another seed, input or net")
                return None
            step = _scalar(z, "step", "i")
            arrays = {k: z[k] for k in limits}
            for k, a in arrays.items():
                if a.dtype != np.float32 or not np.isfinite(a).all():
                    raise UnusableState(f"its '{k}' is not a finite float32 array")
            check(step, arrays)
            state = _rng_state(z)
        except UnusableState as e:
            self._set_aside("bad", str(e))
            return None
        rng.set_state(state)  # only once everything checked: a rejected state leaves rng untouched
        self.last = int(step)
        return self.last, {k: a.copy() for k, a in arrays.items()}

    def _set_aside(self, label: str, why: str) -> None:
        moved = set_aside(self.path, label)
        self.note(f"the saved state {self.path} cannot be used ({why}); set aside as {moved.name}, starting over")

    def write(self, step: int, arrays: Arrays, rng: np.random.RandomState) -> None:
        _, keys, pos, has_gauss, cached = rng.get_state()
        extra = {} if self.seed is None else {"seed": np.int64(self.seed)}
        with atomic_output(self.path) as f:
            np.savez(f, key=self.key, step=step, keys=keys, pos=pos, has_gauss=has_gauss, cached=cached,
                     **arrays, **extra)
        self.last = int(step)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def state_path(output: os.PathLike) -> Path:
    """Where a dream's state waits beside its output: ``.NAME.dream-state.npz``."""
    output = Path(output)
    # Room is left for the label set_aside() adds to a state it cannot use.
    return output.with_name(f".{fit_name(output.name, '..dream-state.npz.old-' + '0' * 12)}.dream-state.npz")


class FileCheckpoint(StateFile):
    """A :class:`~deepdream_caffe.dream.octaves.OctaveCheckpoint` in a state file: a dream resumes per octave."""

    def __init__(self, path: os.PathLike, key: str, rng: np.random.RandomState, seed: Optional[int] = None,
                 note: Optional[Note] = None) -> None:
        super().__init__(path, key, seed, note)
        self.rng = rng
        self.resumed_from: Optional[int] = None

    def load(self, shapes: Optional[Sequence[Tuple[int, ...]]] = None) -> Optional[Tuple[int, np.ndarray]]:
        """(last octave done, its input), or None to start over.

        ``shapes`` are this run's octave input shapes, smallest first; the
        saved octave must be one of them and its data must have its shape.
        """
        def check(octave: int, arrays: Arrays) -> None:
            if shapes is None:
                return
            if not 0 <= octave < len(shapes):
                raise UnusableState(f"its octave {octave} is not one of this run's {len(shapes)}")
            if tuple(arrays["data"].shape) != tuple(shapes[octave]):
                raise UnusableState(f"its data has shape {arrays['data'].shape}, octave {octave} has "
                                    f"{tuple(shapes[octave])}")

        limit = 4 * max((int(np.prod(s)) for s in shapes), default=0) if shapes else 1 << 40
        got = self.read(self.rng, {"data": limit}, check)
        if got is None:
            return None
        self.resumed_from = got[0]
        total = f" of {len(shapes)}" if shapes else ""
        self.note(f"resumed after octave {got[0] + 1}{total} from {self.path}")
        return got[0], got[1]["data"]

    def save(self, octave: int, data: np.ndarray) -> None:
        self.write(octave, {"data": data}, self.rng)


# ---------------------------------------------------------------- the record


def read_record(path: os.PathLike) -> Optional[Dict[str, Any]]:
    """The record at ``path`` (a JSON object with its "key" and "params"), None if there is none, else UnusableState."""
    path = Path(path)
    if not os.path.lexists(path):
        return None
    try:
        data = read_regular(path, "record", MAX_RECORD_BYTES)
    except DeepDreamError as e:
        raise UnusableState(str(e)) from None
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise UnusableState(f"not JSON ({e})") from None
    if not isinstance(record, dict) or not isinstance(record.get("params"), dict) \
            or not isinstance(record.get("key"), str):
        raise UnusableState("it holds no run key and parameters")
    return record


def write_record(path: os.PathLike, record: Dict[str, Any]) -> None:
    atomic_json(path, record)


def _differences(old: Dict[str, Any], new: Dict[str, Any]) -> str:
    was, now = old["params"], new["params"]
    diff = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
    diff += [k for k in ("seed", "input_sha1") if old.get(k) != new.get(k) and k not in diff]
    return ", ".join(d.replace("input_sha1", "input") for d in diff) or "settings"


# ---------------------------------------------------------------- the folder of a frame loop


# ---------------------------------------------------------------- what a run reads and writes

MaybePath = Optional[Union[str, os.PathLike]]


def _identity(path: os.PathLike) -> Tuple[Any, ...]:
    """What makes two paths one file: device and inode where it exists (links followed), else the resolved path."""
    try:
        st = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return st.st_dev, st.st_ino


def is_own_record(path: os.PathLike) -> bool:
    """Whether ``path`` is a regular file (not a link) holding a JSON record this tool wrote."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        record = json.loads(read_regular(path, "record", MAX_RECORD_BYTES).decode("utf-8"))
    except (DeepDreamError, OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(record, dict) and record.get("tool") == TOOL


@dataclass
class RunFiles:
    """The files a run reads and those it will write, checked against each other before any work (:meth:`check`).

    ``writes`` are files the run replaces (an output, a frame), ``records``
    the JSON records it replaces (only ones this tool wrote), ``states`` its
    state files (one that cannot be used is set aside, never replaced),
    ``folders`` the folders it fills (a frame folder, a work folder);
    ``reads`` are every file it reads (image, guide, init, net files,
    labels, frames).
    """

    reads: Sequence[MaybePath] = ()
    writes: Sequence[MaybePath] = ()
    records: Sequence[MaybePath] = ()
    folders: Sequence[MaybePath] = ()
    states: Sequence[MaybePath] = ()

    def check(self) -> None:
        """Refuse in one line a write that is an input (same path, symlink, hard link), a folder where a file
        goes, a link or a file where a folder goes, or a file at a record's place that this tool did not write."""
        reads = {_identity(p): Path(p) for p in self.reads if p is not None}
        for p in [*self.writes, *self.records, *self.folders, *self.states]:
            if p is None:
                continue
            src = reads.get(_identity(p))
            if src is not None:
                raise DeepDreamError(f"refusing to overwrite the input {src}: this run writes {p}; "
                                     "choose another output")
        for p in [*self.writes, *self.records]:
            if p is not None and os.path.isdir(p):
                raise DeepDreamError(f"{p} is a folder, where this run writes a file; move it away or choose "
                                     "another output")
        for p in self.records:
            if p is not None and os.path.lexists(p) and not is_own_record(p):
                raise DeepDreamError(f"{p} is not a record this tool wrote; refusing to replace it with this run's "
                                     "record (move it away or choose another output)")
        for p in self.folders:
            if p is not None and os.path.islink(p):
                raise DeepDreamError(f"{p} is a symbolic link; refusing to write through it (use the folder itself)")
            if p is not None and os.path.lexists(p) and not os.path.isdir(p):
                raise DeepDreamError(f"{p} is not a folder; choose another output")


def lock_path(output: os.PathLike, folder: bool = False) -> Path:
    """The lock file of a run writing ``output``: ``.NAME.lock`` beside a file, ``.deepdream-caffe.lock`` in a folder.

    A name too long for that is locked under its sha1 instead (a long name stays usable).
    """
    output = Path(output)
    if folder:
        return output / f".{TOOL}.lock"
    name = f".{output.name}.lock"
    if len(os.fsencode(name)) > 255:
        name = f".{hashlib.sha1(os.fsencode(output.name)).hexdigest()}.lock"
    return output.with_name(name)


@contextmanager
def output_lock(output: os.PathLike, folder: bool = False) -> Iterator[None]:
    """Hold the lock of ``output`` for the run; while one run holds it, another writing ``output`` is refused.

    With ``folder`` the output is a folder (of frames): the lock is kept in it, and the folders made for
    the lock go with it if the run wrote nothing there.

    An flock is dropped by the kernel when its holder dies, so a killed run
    never leaves the output locked. The lock file is removed on release; a
    run that opened it just before then finds, once locked, that it is no
    longer the file at the lock's path, and opens the new one.
    """
    path = lock_path(output, folder)
    made = [p for p in (Path(output), *Path(output).parents) if not os.path.lexists(p)] if folder else []
    if made:
        try:
            made[0].mkdir(parents=True)
        except OSError as e:
            raise DeepDreamError(f"cannot create {output}: {os_reason(e)}") from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as e:
            why = "a link or a FIFO is in its place" if e.errno in (errno.ELOOP, errno.ENXIO) else os_reason(e)
            raise DeepDreamError(f"cannot create the lock file {path}: {why}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise DeepDreamError(f"the lock file {path} is not a regular file; move it away")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DeepDreamError(f"another run is writing {output} (it holds {path}); wait for it to end "
                                     "or choose another output") from None
            try:
                here = os.lstat(path)
            except FileNotFoundError:
                here = None
        except BaseException:
            os.close(fd)
            raise
        mine = os.fstat(fd)
        if here is not None and (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
            break
        os.close(fd)  # its holder removed it as we opened it: take the new one
    try:
        yield
    finally:
        try:
            os.unlink(path)
            for folder_made in made:
                folder_made.rmdir()
        except OSError:
            pass  # a folder with the run's frames in it stays
        os.close(fd)


class RunDir:
    """The folder of a frame loop: frames ``0000.jpg``... (``digits``, ``ext``), ``KIND.json``, ``.KIND-state.npz``.

    ``record`` is the run's metadata with its "params" (and "seed",
    "input_sha1" where known), written to ``KIND.json`` with ``key``.
    """

    def __init__(self, folder: os.PathLike, kind: str, key: str, record: Dict[str, Any], *, digits: int = 4,
                 ext: str = ".jpg", quality: int = 75, note: Optional[Note] = None) -> None:
        self.folder, self.kind = Path(folder), kind
        self.record = dict(record, key=key, tool=TOOL)
        record_name, state_name = run_files(kind)
        self.record_path = self.folder / record_name
        self.state = StateFile(self.folder / state_name, key, note=note)
        self.note = self.state.note
        self.digits, self.ext, self.quality = digits, ext, quality

    def frame(self, i: int) -> Path:
        return self.folder / f"{i:0{self.digits}d}{self.ext}"

    def frames_here(self) -> List[str]:
        return sorted(p.name for p in self.folder.glob("[0-9]" * self.digits + self.ext))

    def files(self) -> List[Path]:
        """The run's files here: its frames on disk, its record and its state."""
        return [self.folder / n for n in self.frames_here() + [self.record_path.name, self.state.path.name]]

    def check(self, inputs: Iterable[MaybePath]) -> None:
        """Refuse, before any work, a run whose files would replace one of ``inputs`` (see :class:`RunFiles`),
        whose folder is a link, or whose folder holds a link under one of its file names."""
        frames = [self.folder / n for n in self.frames_here()]
        RunFiles(list(inputs), writes=frames, records=[self.record_path], folders=[self.folder],
                 states=[self.state.path]).check()
        links = [p for p in self.files() if p.is_symlink()]
        if links:
            raise DeepDreamError(f"{links[0]} is a symbolic link, where this {self.kind} keeps its own files; "
                                 "refusing to follow it (move it away)")

    def open(self) -> None:
        """Create the folder or check that it holds this run's frames; then write this run's record.

        A state of another run is set aside when read (:meth:`resume`).
        """
        frames = self.frames_here() if self.folder.is_dir() else []
        try:
            old = read_record(self.record_path)
        except UnusableState as e:
            moved = set_aside(self.record_path, "bad")
            if frames:
                raise DeepDreamError(
                    f"{self.record_path} cannot be used ({e}; set aside as {moved.name}), so the frames in "
                    f"{self.folder} cannot be matched to this run; use another output folder or move them away"
                ) from None
            self.note(f"{self.record_path} cannot be used ({e}); set aside as {moved.name}, starting over")
            old = None
        if old is None and frames:
            raise DeepDreamError(f"{self.folder} holds frames ({frames[0]}, ...) but no {self.record_path.name}: "
                                 "they were not made by a run that can be continued; use another output folder")
        if old is not None and old["key"] != self.record["key"]:
            raise DeepDreamError(f"{self.folder} holds frames of another run (other "
                                 f"{_differences(old, self.record)}); use another output folder")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DeepDreamError(f"cannot create {self.folder}: {e.strerror or e}") from None
        write_record(self.record_path, self.record)

    def resume(self, rng: np.random.RandomState, shapes: Dict[str, Tuple[int, ...]]) -> Tuple[int, Optional[Arrays]]:
        """(the first frame to dream, the state after the frame before it or None), restoring ``rng``.

        ``shapes`` are the state's arrays and their shapes. Frames before
        the saved one must be on disk; the saved one is written from the
        state when a kill came between the two.
        """
        def check(step: int, arrays: Arrays) -> None:
            if not 0 <= step < 10**6:
                raise UnusableState(f"its frame index {step} is out of range")
            for k, a in arrays.items():
                if a.shape != tuple(shapes[k]):
                    raise UnusableState(f"its '{k}' is not an image of shape {tuple(shapes[k])}")
            missing = [i for i in range(step) if not self.frame(i).exists()]
            if missing:
                raise UnusableState(f"it continues frame {step} but {self.frame(missing[0]).name} is missing")

        got = self.state.read(rng, {k: 4 * int(np.prod(s)) for k, s in shapes.items()}, check)
        if got is None:
            return 0, None
        done, arrays = got
        self.write_frame(done, arrays["dream"])
        return done + 1, arrays

    def write_frame(self, i: int, img: np.ndarray) -> None:
        """Frame ``i``, unless it is on disk already (made by this run, so the same bits)."""
        if not self.frame(i).exists():
            save_image(self.frame(i), img, quality=self.quality)

    def remove(self) -> None:
        """The folder's frames, record and state, and the folder itself unless something else is in it."""
        for path in self.files():
            path.unlink(missing_ok=True)
        for tmp in self.folder.glob(".*.tmp"):  # a write that a kill cut short (atomic_output's temp files)
            tmp.unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass  # something else was put there: leave it


def saved_record(folder: os.PathLike, kind: str) -> Optional[Dict[str, Any]]:
    """The record in ``folder/KIND.json``, or None if there is none or it does not read."""
    try:
        return read_record(Path(folder) / run_files(kind)[0])
    except UnusableState:
        return None


def saved_seed(folder: os.PathLike, kind: str) -> Optional[int]:
    """The seed recorded in ``folder/KIND.json`` (an unfinished run's, to carry on with), or None."""
    seed = (saved_record(folder, kind) or {}).get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32 else None


def frame_loop(run: RunDir, rng: np.random.RandomState, dream: DreamFn, start: int, last: Optional[Arrays],
               frames: Iterable[Optional[np.ndarray]], carry: CarryFn,
               on_frame: Optional[Callable[[int], None]] = None,
               before: Optional[Callable[[int], None]] = None) -> int:
    """Dream frames ``start``, ``start + 1``, ... of ``run``; returns the number of frames done.

    ``frames`` are the input frames from ``start`` on (None for a loop
    without input, such as a zoom); ``carry(frame, last)`` makes the input
    of the dream from the frame and the state after the frame before
    (``last``: its "dream", and its input "frame" where there is one).
    After each dream the state is saved, then the frame written, then
    ``on_frame(i)`` called, so a kill at any point loses at most that frame.
    ``before(i)`` is called first (a schedule sets frame ``i``'s settings).
    """
    done = start
    for i, frame in zip(itertools.count(start), frames):
        if before is not None:
            before(i)
        result = dream(carry(frame, last), rng)
        last = {"dream": result} if frame is None else {"frame": frame, "dream": result}
        run.state.write(i, last, rng)
        run.write_frame(i, result)
        done = i + 1
        if on_frame is not None:
            on_frame(i)
    return done
