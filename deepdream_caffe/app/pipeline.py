"""File in, file out: ``dream_file`` and ``zoom_file``, and the ``DreamSession`` they share.

A session resolves and loads the net once for a :class:`DreamConfig` and
dreams any number of images with it (frames of a zoom or a video, a batch
of photos). Everything is checked before the first pixel is computed;
failures are one DeepDreamError line. Progress and notes go to a
:class:`Reporter`; nothing here prints.
"""
from __future__ import annotations

import os
import secrets
import signal
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..blas_hook import describe, kernel_choice
from ..dream import defaults as nb
from ..dream.arguments import check_kinds
from ..dream.ascent import ascend
from ..dream.gradient import check_objective
from ..dream.guide import guide_features_at
from ..dream.keyframes import Keyframes
from ..dream.octaves import octave_sizes
from ..dream.params import Ascent, Lbfgs, SettingError
from ..dream.sizing import fit_octaves, tile_extents
from ..dream.tiling import TilePolicy
from ..errors import DeepDreamError, Interrupted
from ..io.hashing import file_sha1
from ..io.image import image_format, read_image, sample_image, save_image, shrink, sidecar_path
from ..net.access import check_layer
from ..net.caffe_env import import_caffe
from ..net.devices import select_device
from ..net.loading import _NamesOnly, load_net
from ..net.prototxt import deepest_layer, layer_index, read_prototxt
from ..net.referee import check_structure
from .config import DreamConfig, ZoomConfig
from .modes import run_lbfgs
from .netspec import NetSpec, resolve_net
from .objective import build_objective, is_plain, objective_layer_names
from .picks import Chosen, check_picks, pick_channels
from .record import output_metadata, run_params
from .reporting import Progress, Reporter
from .run import FileCheckpoint, RunDir, RunFiles, StateFile, output_lock, run_key, saved_seed, state_path
from .zoom import KIND as ZOOM_KIND
from .zoom import PARAMS_FILE, check_room, frame_path, is_complete, zoom_frames


@dataclass
class DreamResult:
    """One dreamed image (float32 HxWx3 RGB) and what the run would record about it."""

    image: np.ndarray
    octave_n: int  # octaves actually used (fewer than asked when the image is small)
    extra: Dict[str, Any] = field(default_factory=dict)  # mode-specific metadata (L-BFGS: its record)


def load_input(path: Optional[os.PathLike], exif_orientation: str = "apply") -> np.ndarray:
    """The image at ``path``, or scikit-image's sample photo for ``None``."""
    return read_input(path, exif_orientation)[0]


def read_input(path: Optional[os.PathLike], exif_orientation: str = "apply",
               max_size: Optional[int] = None) -> Tuple[np.ndarray, Optional[Dict]]:
    """:func:`load_input` and what was done to it (the EXIF orientation; None for the sample photo),
    its long side brought down to ``max_size``."""
    if path is None:
        return shrink(sample_image(), max_size), None
    img, done = read_image(path, exif_orientation)
    return shrink(img, max_size), done


LOSSY = ("JPEG", "WEBP")  # the formats --quality means something for


def output_files(out: os.PathLike, inputs: Sequence[Optional[os.PathLike]]) -> RunFiles:
    """What a dream into ``out`` writes (the image, its state, ``OUT.json`` but for a PNG) and reads (``inputs``)."""
    out = Path(out)
    record = [] if image_format(out) == "PNG" else [sidecar_path(out)]
    return RunFiles(inputs, writes=[out], records=record, states=[state_path(out)])


def check_output(out: os.PathLike, inputs: Sequence[Optional[os.PathLike]], quality: Optional[int] = None) -> None:
    """Refuse, before any work, an output of unknown format, in a missing folder, or that would replace an input.

    ``inputs`` are every file the run reads; see :class:`~.run.RunFiles`.
    A ``quality`` is refused for a format that has none (PNG, BMP, TIFF).
    """
    out = Path(out)
    fmt = image_format(out)
    if quality is not None and fmt not in LOSSY:
        raise SettingError(f"{{quality}} is for .jpg and .webp outputs; {out.name} is {fmt}, which has none")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise DeepDreamError(f"output directory does not exist: {out.parent}")
    output_files(out, inputs).check()


def net_files(config: Any) -> List[Optional[Path]]:
    """The files of ``config``'s net the user named (prototxt, weights): inputs no output may replace."""
    return [config.net.prototxt, config.net.weights]


def _interrupted(e: KeyboardInterrupt, where: str, how: str) -> Interrupted:
    """The one line of a run stopped by a signal: where it stopped and how to go on."""
    return Interrupted(f"interrupted {where}; {how}", getattr(e, "signum", signal.SIGINT))


def choose_seed(config: DreamConfig, reporter: Reporter) -> int:
    """The config's seed, or a fresh one that the reporter is told (so the run can be repeated)."""
    if config.seed is not None:
        return config.seed
    seed = secrets.randbelow(2**32)
    reporter.seed_chosen(seed)
    return seed


class DreamSession:
    """A net resolved, checked and loaded once for ``config``; dreams many images with it.

    The cheap checks (prototxt, layers, guide image, device) run here; the
    net itself loads on first use (or :meth:`load`), so an image too small
    for the layers is refused before the weights are read. ``layers`` are
    every layer the objective reads, ``end`` the deepest of them (the net is
    cut after it, and sizes are judged by it); ``objective`` is set on load,
    and by :meth:`choose` where the config picks channels on the input.
    ``net_cache`` (a dict kept by the caller, e.g. one per batch worker)
    shares loaded nets between sessions whose configs differ only in what the
    net does not depend on (seed, steps, octaves).
    """

    def __init__(self, config: DreamConfig, reporter: Optional[Reporter] = None,
                 net_cache: Optional[Dict[Tuple[Any, ...], Any]] = None) -> None:
        import_caffe(verbose=config.verbose)
        self.config = config
        self.reporter = reporter or Reporter()
        if config.verbose:
            blas = kernel_choice()  # the family decides speed and bits: say which, and why
            if blas["core"] is not None:
                self.reporter.note(f"OpenBLAS kernels: {describe(blas)}, {blas['threads']} threads")
        self.spec: NetSpec = resolve_net(config.net, quiet=self.reporter.quiet)
        self.layers = objective_layer_names(config, self.spec.default_layer)
        self.param = read_prototxt(self.spec.prototxt)
        # Only the layers Caffe builds (up to the deepest objective layer) must be sound; with an
        # unknown layer name the whole net is checked, and the name is reported next.
        cut = None
        if all(layer_index(self.param, name) is not None for name in self.layers):
            cut = deepest_layer(self.param, self.layers)
        check_structure(self.param, self.spec.prototxt, end=cut, allow_python_layers=config.net.allow_python_layers)
        for name in self.layers:
            check_layer(_NamesOnly(self.param), name)
        self.end = deepest_layer(self.param, self.layers)
        self._guide_img = load_input(config.guide, config.exif_orientation) if config.guide is not None else None
        if self._guide_img is not None:
            fit_octaves(self.param, self.end, self._guide_img.shape[0], self._guide_img.shape[1], 1,
                        config.octaves.octave_scale)
        self.device = select_device(config.gpu)
        self._net: Any = None
        self._net_cache = net_cache
        self.objective: Any = None
        self.chosen: Optional[Chosen] = None if config.picks else ()
        self._features: Optional[Dict[str, np.ndarray]] = None
        self._plans: Dict[Tuple[int, int], int] = {}

    @property
    def net(self) -> Any:
        """The loaded :class:`~deepdream_caffe.net.loading.DreamNet` (loaded now if it was not)."""
        return self.load()

    def load(self) -> Any:
        """Load the net (once), compute the guide's features and the objective; returns the DreamNet."""
        if self._net is not None:
            return self._net
        spec = self.spec
        key = (str(spec.prototxt), str(spec.weights), tuple(spec.mean), tuple(spec.channel_swap),
               tuple(self.layers), self.config.fast, self.config.net.allow_python_layers)
        dnet = None if self._net_cache is None else self._net_cache.get(key)
        if dnet is None:
            dnet = load_net(spec.prototxt, spec.weights, mean=spec.mean, channel_swap=spec.channel_swap,
                            end=list(self.layers), fast=self.config.fast, weights_sha1=spec.weights_sha1,
                            allow_python_layers=self.config.net.allow_python_layers)
            if self._net_cache is not None:
                self._net_cache[key] = dnet
        if spec.weights_sha1 is None:
            self.spec = replace(spec, weights_sha1=dnet.weights_sha1)
        if self._guide_img is not None:
            guided = [name for name, _ in self.config.objective_layers(spec.default_layer)]
            self._features = guide_features_at(dnet, self._guide_img, guided)
        check_picks(dnet, self.config.picks)
        # Picks are checked as channels 0..k-1 until choose() knows the input.
        objective = self._objective(self.chosen or tuple((layer, c, 1.0) for layer, _, k in self.config.picks
                                                         for c in range(k)))
        check_objective(dnet, objective)  # a channel past the layer's count, before any image is read
        self.objective = objective
        self._net = dnet
        return dnet

    def _objective(self, chosen: Chosen) -> Any:
        cfg = replace(self.config, channels=self.config.channels + chosen, picks=())
        return build_objective(cfg, self.spec.default_layer, self._features)

    def choose(self, img: np.ndarray, seed: Optional[int]) -> Chosen:
        """Choose the config's picked channels on ``img`` (HxWx3 RGB, as dreamed) with ``seed``; the objective
        adds them. Without picks, nothing to do."""
        if self.config.picks:
            self.use(pick_channels(self.load(), img, self.config.picks, seed))
        return self.chosen

    def use(self, chosen: Chosen) -> None:
        """Dream ``chosen`` (what :meth:`choose` chose, here or in a session of the same picks) as the picks."""
        self.load()
        self.chosen = chosen
        self.objective = self._objective(chosen)

    def _chosen(self) -> Chosen:
        if self.chosen is None:
            raise DeepDreamError("the picked channels are not chosen yet: call choose(img, seed) first")
        return self.chosen

    def octaves_for(self, h: int, w: int) -> int:
        """How many octaves an ``h`` x ``w`` image gets (fewer than asked if small; told once per size)."""
        if (h, w) not in self._plans:
            # the sizes the net really runs at: tiles above the tiling threshold (ascent)
            extents = tile_extents(self.config.tiling) if self.config.mode == "ascent" else None
            octaves = self.config.octaves
            if extents:  # the dream checks the whole image too (see check_octaves_fit): refuse it here first
                fit_octaves(self.param, self.end, h, w, 1, octaves.octave_scale)
            n, why = fit_octaves(self.param, self.end, h, w, octaves.octave_n, octaves.octave_scale,
                                 **({"extents": extents} if extents else {}))
            if why:
                self.reporter.note(why)
            self._plans[(h, w)] = n
        return self._plans[(h, w)]

    @property
    def prototxt_sha1(self) -> str:
        """The sha1 of the prototxt (it decides the pixels as much as the weights do); hashed once."""
        if getattr(self, "_prototxt_sha1", None) is None:
            self._prototxt_sha1 = file_sha1(self.spec.prototxt)
        return self._prototxt_sha1

    def params(self, octave_n: int) -> Dict[str, Any]:
        """The recorded settings of a dream with ``octave_n`` octaves (loads the net: they name its objective)."""
        self.load()
        return run_params(self.config, self.spec, self.layers, octave_n, repr(self.objective), self._chosen())

    def dream(self, img: np.ndarray, rng: Optional[np.random.RandomState] = None, *, label: str = "dream",
              checkpoint: Any = None, ascent: Optional[Ascent] = None) -> DreamResult:
        """Dream on ``img`` (HxWx3 RGB) in the config's mode; ``rng`` supplies the jitter (ascent).

        ``checkpoint`` lets an interrupted dream resume after its last
        finished octave (either mode); ``ascent`` replaces the config's (a
        schedule's step size).
        """
        octave_n = self.octaves_for(*img.shape[:2])
        net = self.load()
        cfg = self.config
        self._chosen()

        def progress(sizes: List[Tuple[int, int]], iter_n: int) -> Progress:
            return self.reporter.progress(sizes, iter_n, label)

        octaves = replace(cfg.octaves, octave_n=octave_n)
        if isinstance(cfg.solver, Lbfgs):
            # One layer of weight 1: the mode's own "gain"/"l2" on it (the same terms, a shorter record).
            out, info = run_lbfgs(net, img, end=self.end, octaves=octaves, options=cfg.solver, progress=progress,
                                  checkpoint=checkpoint, objective=None if is_plain(cfg) else self.objective)
            return DreamResult(out, octave_n, {"lbfgs": info})
        bar = progress(octave_sizes(*img.shape[:2], octave_n, octaves.octave_scale), cfg.solver.iter_n)
        try:
            out = ascend(net, img, ascent or cfg.solver, octaves, end=self.end, objective=self.objective,
                         gradient=TilePolicy(**asdict(cfg.tiling)), rng=rng, checkpoint=checkpoint,
                         callback=lambda info: bar.update(info.octave, info.step))
        finally:
            bar.close()
        return DreamResult(out, octave_n)


class Scheduled:
    """A session's dream, each frame with the layer and step size that ``keyframes`` give it.

    Every layer of the schedule gets a session of its own (sharing loaded
    nets); all are checked, and sized for ``h`` x ``w`` frames, when made,
    so a layer the net lacks is refused before any work. :meth:`before`
    sets a frame's settings, the call dreams it.
    """

    def __init__(self, session: DreamSession, keyframes: Optional[Keyframes], h: int, w: int) -> None:
        self.session, self.keyframes = session, keyframes
        cfg = session.config
        self.sessions: Dict[str, DreamSession] = {}
        if keyframes is not None:
            if cfg.mode == "lbfgs" and "step_size" in keyframes.given():
                raise SettingError("step_size keyframes are for {mode} ascent (L-BFGS chooses its steps)")
            cache: Dict[Tuple[Any, ...], Any] = {}
            for name in keyframes.layers():
                self.sessions[name] = DreamSession(replace(cfg, layer=name, layers=()), session.reporter, cache)
                self.sessions[name].octaves_for(h, w)
        self.now: Tuple[DreamSession, Optional[Ascent]] = (session, None)

    def before(self, i: int) -> None:
        k = self.keyframes
        if k is None:
            return
        step = k.at("step_size", i, None)
        session = self.sessions.get(k.at("layer", i, None), self.session)
        if session.chosen != self.session.chosen:  # a keyframed layer keeps the channels picked on the input
            session.use(self.session.chosen)
        self.now = (session, None if step is None else replace(self.session.config.solver, step_size=step))

    def __call__(self, img: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        session, ascent = self.now
        return session.dream(img, rng, label="frame", ascent=ascent).image


def _settings(what: str, config: Optional[DreamConfig], session: Optional["DreamSession"],
              reporter: Optional[Reporter]) -> Tuple[DreamConfig, Reporter]:
    """The config and reporter of a call: a session's own, or those given for a new session."""
    check_kinds(config=(config, (DreamConfig, None), "a DreamConfig or None"),
                session=(session, (DreamSession, None), "a DreamSession or None"),
                reporter=(reporter, (Reporter, None), "a Reporter or None"))
    if session is None:
        if config is None:
            raise DeepDreamError(f"{what} needs a config or a session")
        return config, reporter or Reporter()
    if config is not None or reporter is not None:
        raise DeepDreamError(f"{what}: a session brings its own config and reporter; give one or the other")
    return session.config, session.reporter


def dream_file(
    input_path: Optional[os.PathLike],
    output: os.PathLike,
    config: Optional[DreamConfig] = None,
    *,
    session: Optional[DreamSession] = None,
    reporter: Optional[Reporter] = None,
    extra_metadata: Optional[Dict[str, Any]] = None,
) -> DreamResult:
    """Dream on the image at ``input_path`` (``None``: a sample photo) and write ``output`` atomically.

    The output's format follows its extension; its metadata (settings,
    seed, hashes) goes into a PNG's text chunk or beside it as
    ``output.json``. A dream (either mode) resumes from ``.output.dream-state.npz``
    if an earlier identical run was interrupted. Pass ``session`` instead of
    ``config`` (and ``reporter``) to reuse a loaded net. ``extra_metadata``
    is added to the record (a batch puts its own there). The input is never
    overwritten.
    """
    cfg, rep = _settings("dream_file", config, session, reporter)
    check_kinds(input_path=(input_path, (os.PathLike, None), "a path or None (a sample photo)"),
                output=(output, os.PathLike, "a path"),
                extra_metadata=(extra_metadata, (dict, None), "a dict or None"))
    output = Path(output)
    input_path = None if input_path is None else Path(input_path)
    check_output(output, [input_path, cfg.guide, *net_files(cfg)], cfg.quality)
    with output_lock(output):  # a second run writing the same output is refused meanwhile
        img, orientation = read_input(input_path, cfg.exif_orientation, cfg.max_size)
        input_sha1 = file_sha1(input_path)
        session = session or DreamSession(cfg, rep)
        octave_n = session.octaves_for(*img.shape[:2])  # a too-small image fails before the net loads
        session.load()  # the weights' hash goes into the resume key
        seed_flag = rep.name("seed")

        def key(seed: Optional[int]) -> str:
            session.choose(img, seed)  # picked channels depend on the seed (random) and the image (strongest)
            return run_key(session.params(octave_n), seed, input_sha1, weights=session.spec.weights_sha1,
                           prototxt=session.prototxt_sha1, shape=tuple(img.shape))

        # Either mode resumes after its last finished octave (L-BFGS draws no random numbers; the state keeps
        # them anyway).
        spath = state_path(output)
        seed = cfg.seed
        lbfgs = cfg.mode == "lbfgs"  # draws nothing at random: no seed is chosen, reported or recorded
        saved_key, saved = StateFile(spath, "").peek() if seed is None and not lbfgs else (None, None)
        if saved is not None and saved_key == key(saved):
            seed = saved
            rep.note(f"resuming the unfinished run in {spath.name} with its seed {seed} "
                     f"(give {seed_flag} to start another)")
        if not lbfgs:
            seed = seed if seed is not None else choose_seed(cfg, rep)
        rng = np.random.RandomState(0 if seed is None else seed)
        checkpoint = FileCheckpoint(spath, key(seed), rng, seed=seed, note=rep.note)
        params = session.params(octave_n)  # with the channels key(seed) chose
        try:
            result = session.dream(img, rng, checkpoint=checkpoint)
            extra = {**result.extra, "quality": _quality(output, cfg), **(extra_metadata or {})}
            if orientation is not None:
                extra["input_orientation"] = orientation
            meta = output_metadata("dream", params, seed, session.spec, session.device, input_path, input_sha1,
                                   extra=extra)
            save_image(output, result.image, meta, quality=_quality(output, cfg) or nb.JPEG_QUALITY)
        except KeyboardInterrupt as e:
            done = checkpoint.last
            if done is None:
                again = "repeat the run" if seed is None else f"repeat the run with {seed_flag} {seed}"
                raise _interrupted(e, "before an octave was finished", f"nothing to resume: {again}") from None
            kept = "" if seed is None else f" (it reuses seed {seed}, kept in {checkpoint.path.name})"
            raise _interrupted(e, f"after octave {done + 1} of {octave_n}",
                               f"run the same command again to resume from there{kept}") from None
        checkpoint.remove()
        rep.note(f"wrote {output}")
        return result


def _quality(output: Path, cfg: DreamConfig) -> Optional[int]:
    """The quality an output is written with (None for formats without one)."""
    if image_format(output) not in LOSSY:
        return None
    return nb.JPEG_QUALITY if cfg.quality is None else cfg.quality


def zoom_file(
    input_path: Optional[os.PathLike],
    out_dir: os.PathLike,
    config: Optional[DreamConfig] = None,
    zoom: ZoomConfig = ZoomConfig(),
    *,
    session: Optional[DreamSession] = None,
    reporter: Optional[Reporter] = None,
) -> int:
    """The notebook's zoom sequence from ``input_path`` into ``out_dir`` (0000.jpg, ...); resumable.

    Returns the index of the first frame made by this call (0 for a fresh
    run). An interrupted run continues with the same frames when repeated
    with the same settings and seed.
    """
    cfg, rep = _settings("zoom_file", config, session, reporter)
    check_kinds(input_path=(input_path, (os.PathLike, None), "a path or None (a sample photo)"),
                out_dir=(out_dir, os.PathLike, "a path"), zoom=(zoom, ZoomConfig, "a ZoomConfig"))
    out_dir = Path(out_dir)
    input_path = None if input_path is None else Path(input_path)
    inputs = zoom_inputs(input_path, cfg, zoom)
    zoom_dir(out_dir).check(inputs)
    with output_lock(out_dir, folder=True):  # a second run into this folder is refused meanwhile
        seed_flag = rep.name("seed")
        img, orientation = read_input(input_path, cfg.exif_orientation, cfg.max_size)
        quality = cfg.quality if cfg.quality is not None else nb.JPEG_QUALITY
        check_room(out_dir, zoom.frames, img, quality, rep.name("frames"))
        input_sha1 = file_sha1(input_path)
        session = session or DreamSession(cfg, rep)
        octave_n = session.octaves_for(*img.shape[:2])
        scheduled = Scheduled(session, zoom.keyframes, *img.shape[:2])  # its layers checked before any work
        session.load()  # the weights' hash goes into the parameters
        seed = cfg.seed
        lbfgs = cfg.mode == "lbfgs"  # draws nothing at random: no seed is chosen, reported or recorded
        if seed is None and not lbfgs:
            seed = saved_seed(out_dir, "zoom")
            if seed is not None and not is_complete(out_dir, zoom.frames):
                rep.note(f"continuing the sequence in {out_dir} with its seed {seed} (from {PARAMS_FILE}; "
                         f"give {seed_flag} to start another elsewhere)")
        if not lbfgs:
            seed = seed if seed is not None else choose_seed(cfg, rep)
        spec = session.spec
        session.choose(img, seed)
        params = dict(session.params(octave_n), seed=seed, model=spec.model, weights_sha1=spec.weights_sha1,
                      prototxt_sha1=session.prototxt_sha1, input=str(input_path) if input_path else None,
                      input_sha1=input_sha1)
        extra: Dict[str, Any] = {"quality": quality}
        if orientation is not None:
            extra["input_orientation"] = orientation
        meta = output_metadata("zoom", params, seed, spec, session.device, input_path, input_sha1, extra=extra)
        progress = {"next": 0}

        def on_start(start: int) -> None:
            progress["next"] = start
            if start >= zoom.frames:
                rep.note(f"all {zoom.frames} frames exist in {out_dir}: nothing to dream")
            elif start > 0:
                rep.note(f"resumed at frame {start} ({frame_path(out_dir, start).name})")

        def on_frame(i: int) -> None:
            progress["next"] = i + 1
            rep.note(f"frame {i + 1}/{zoom.frames} written")

        try:
            return zoom_frames(scheduled, img, out_dir, zoom.frames,
                               np.random.RandomState(0 if seed is None else seed), params=params, metadata=meta,
                               on_frame=on_frame, on_start=on_start, note=rep.note, quality=quality, inputs=inputs,
                               zoom=zoom, before=scheduled.before)
        except KeyboardInterrupt as e:
            kept = "" if seed is None else f" (it reuses seed {seed}, kept in {out_dir / PARAMS_FILE})"
            raise _interrupted(e, f"at frame {progress['next']} of {zoom.frames}",
                               f"run the same command again to resume{kept}") from None


def zoom_inputs(input_path: Optional[os.PathLike], config: DreamConfig, zoom: ZoomConfig) -> List[Optional[Path]]:
    """The files a zoom reads: its first frame, the guide, the keyframes and the net's files."""
    keyframes = zoom.keyframes.path if zoom.keyframes is not None else None
    return [None if input_path is None else Path(input_path), config.guide, keyframes, *net_files(config)]


def zoom_dir(out_dir: os.PathLike) -> RunDir:
    """The folder of a zoom, to check what it holds before any work (:meth:`RunDir.check`)."""
    return RunDir(out_dir, ZOOM_KIND, "", {})
