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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DeepDreamError
from ..io.image import image_format, load_image, sample_image, save_image
from ..io.metadata import file_sha1
from .config import DreamConfig, ZoomConfig
from .modes import run_ascent, run_lbfgs
from .netspec import NetSpec, resolve_net
from .record import output_metadata, resume_key, run_params
from .reporting import Progress, Reporter


@dataclass
class DreamResult:
    """One dreamed image (float32 HxWx3 RGB) and what the run would record about it."""

    image: np.ndarray
    octave_n: int  # octaves actually used (fewer than asked when the image is small)
    extra: Dict[str, Any] = field(default_factory=dict)  # mode-specific metadata (L-BFGS: its record)


def load_input(path: Optional[os.PathLike]) -> np.ndarray:
    """The image at ``path``, or scikit-image's sample photo for ``None``."""
    return sample_image() if path is None else load_image(path)


def check_output(out: os.PathLike, inputs: Sequence[Optional[os.PathLike]]) -> None:
    """Refuse, before any work, an output of unknown format, in a missing folder, or that is an input."""
    out = Path(out)
    image_format(out)
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise DeepDreamError(f"output directory does not exist: {out.parent}")
    for p in inputs:
        if p is not None and out.exists() and Path(p).exists() and os.path.samefile(out, p):
            raise DeepDreamError(f"refusing to overwrite the input {p}; choose another -o")


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
    cut after it, and sizes are judged by it); ``objective`` is set on load.
    ``net_cache`` (a dict kept by the caller, e.g. one per batch worker)
    shares loaded nets between sessions whose configs differ only in what the
    net does not depend on (seed, steps, octaves).
    """

    def __init__(self, config: DreamConfig, reporter: Optional[Reporter] = None,
                 net_cache: Optional[Dict[Tuple[Any, ...], Any]] = None) -> None:
        from ..net.caffe_env import import_caffe  # noqa: PLC0415

        import_caffe(verbose=config.verbose)
        from ..net.access import check_layer  # noqa: PLC0415
        from ..net.devices import select_device  # noqa: PLC0415
        from ..net.loading import _NamesOnly  # noqa: PLC0415
        from ..net.prototxt import check_structure, deepest_layer, layer_index, read_prototxt  # noqa: PLC0415
        from ..dream.sizing import fit_octaves  # noqa: PLC0415
        from .objective import objective_layer_names  # noqa: PLC0415

        self.config = config
        self.reporter = reporter or Reporter()
        if config.verbose:
            from ..net.blas import describe, kernel_choice  # noqa: PLC0415

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
        self._guide_img = load_input(config.guide) if config.guide is not None else None
        if self._guide_img is not None:
            fit_octaves(self.param, self.end, self._guide_img.shape[0], self._guide_img.shape[1], 1,
                        config.octave_scale)
        self.device = select_device(config.gpu)
        self._net: Any = None
        self._net_cache = net_cache
        self.objective: Any = None
        self._plans: Dict[Tuple[int, int], int] = {}

    @property
    def net(self) -> Any:
        """The loaded :class:`~deepdream_caffe.net.loading.DreamNet` (loaded now if it was not)."""
        return self.load()

    def load(self) -> Any:
        """Load the net (once), compute the guide's features and the objective; returns the DreamNet."""
        if self._net is not None:
            return self._net
        from ..dream.gradient import check_objective  # noqa: PLC0415
        from ..net.loading import load_net  # noqa: PLC0415
        from .objective import build_objective  # noqa: PLC0415

        spec = self.spec
        key = (str(spec.prototxt), str(spec.weights), tuple(spec.mean), tuple(spec.channel_swap),
               tuple(self.layers), self.config.notebook_net, self.config.net.allow_python_layers)
        dnet = None if self._net_cache is None else self._net_cache.get(key)
        if dnet is None:
            dnet = load_net(spec.prototxt, spec.weights, mean=spec.mean, channel_swap=spec.channel_swap,
                            end=list(self.layers), fast=not self.config.notebook_net, weights_sha1=spec.weights_sha1,
                            allow_python_layers=self.config.net.allow_python_layers)
            if self._net_cache is not None:
                self._net_cache[key] = dnet
        if spec.weights_sha1 is None:
            self.spec = replace(spec, weights_sha1=dnet.weights_sha1)
        features = None
        if self._guide_img is not None:
            from ..dream.guide import guide_features_at  # noqa: PLC0415

            guided = [name for name, _ in self.config.objective_layers(spec.default_layer)]
            features = guide_features_at(dnet, self._guide_img, guided)
        objective = build_objective(self.config, spec.default_layer, features)
        check_objective(dnet, objective)  # a channel past the layer's count, before any image is read
        self.objective = objective
        self._net = dnet
        return dnet

    def octaves_for(self, h: int, w: int) -> int:
        """How many octaves an ``h`` x ``w`` image gets (fewer than asked if small; told once per size)."""
        if (h, w) not in self._plans:
            from ..dream.sizing import fit_octaves, tile_extents  # noqa: PLC0415

            # the sizes the net really runs at: tiles above the tiling threshold (ascent)
            extents = tile_extents(self.config.tiling) if self.config.mode == "ascent" else None
            n, why = fit_octaves(self.param, self.end, h, w, self.config.octaves, self.config.octave_scale,
                                 **({"extents": extents} if extents else {}))
            if why:
                self.reporter.note(why)
            self._plans[(h, w)] = n
        return self._plans[(h, w)]

    def params(self, octave_n: int) -> Dict[str, Any]:
        """The recorded settings of a dream with ``octave_n`` octaves (loads the net: they name its objective)."""
        self.load()
        return run_params(self.config, self.spec, self.layers, octave_n, repr(self.objective))

    def dream(self, img: np.ndarray, rng: Optional[np.random.RandomState] = None, *, label: str = "dream",
              checkpoint: Any = None) -> DreamResult:
        """Dream on ``img`` (HxWx3 RGB) in the config's mode; ``rng`` supplies the jitter (ascent).

        ``checkpoint`` lets an interrupted dream resume after its last
        finished octave (either mode).
        """
        octave_n = self.octaves_for(*img.shape[:2])
        net = self.load()
        cfg = self.config

        def progress(sizes: List[Tuple[int, int]], iter_n: int) -> Progress:
            return self.reporter.progress(sizes, iter_n, label)

        if cfg.mode == "lbfgs":
            from .objective import is_plain  # noqa: PLC0415

            # One layer of weight 1: the mode's own "gain"/"l2" on it (the same terms, a shorter record).
            out, info = run_lbfgs(net, img, end=self.end, octave_n=octave_n, octave_scale=cfg.octave_scale,
                                  options=cfg.lbfgs, progress=progress, checkpoint=checkpoint,
                                  objective=None if is_plain(cfg) else self.objective)
            return DreamResult(out, octave_n, {"lbfgs": info})
        out = run_ascent(net, img, end=self.end, iter_n=cfg.iters, octave_n=octave_n, octave_scale=cfg.octave_scale,
                         clip=cfg.clip, objective=self.objective, gradient=cfg.tiling, rng=rng, progress=progress,
                         checkpoint=checkpoint, step_size=cfg.step_size, jitter=cfg.jitter)
        return DreamResult(out, octave_n)


def _settings(what: str, config: Optional[DreamConfig], session: Optional["DreamSession"],
              reporter: Optional[Reporter]) -> Tuple[DreamConfig, Reporter]:
    """The config and reporter of a call: a session's own, or those given for a new session."""
    if session is None:
        if config is None:
            raise TypeError(f"{what} needs a config or a session")
        return config, reporter or Reporter()
    if config is not None or reporter is not None:
        raise TypeError(f"{what}: a session brings its own config and reporter; give one or the other")
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
    output = Path(output)
    input_path = None if input_path is None else Path(input_path)
    check_output(output, [input_path, cfg.guide])
    img = load_input(input_path)
    input_sha1 = file_sha1(input_path)
    session = session or DreamSession(cfg, rep)
    octave_n = session.octaves_for(*img.shape[:2])  # a too-small image fails before the net loads
    session.load()  # the weights' hash goes into the resume key
    seed = choose_seed(cfg, rep)
    rng = np.random.RandomState(seed)
    params = session.params(octave_n)
    from ..io.checkpoint import FileCheckpoint, state_path  # noqa: PLC0415

    # Either mode resumes after its last finished octave (L-BFGS draws no random numbers; the state keeps them anyway).
    key = resume_key(params, seed, input_sha1, session.spec.weights_sha1, img.shape)
    checkpoint = FileCheckpoint(state_path(output), key, rng)
    result = session.dream(img, rng, checkpoint=checkpoint)
    if checkpoint.resumed_from is not None:
        rep.note(f"resumed after octave {checkpoint.resumed_from + 1} from {checkpoint.path}")
    meta = output_metadata("dream", params, seed, session.spec, session.device, input_path, input_sha1,
                           extra={**result.extra, **(extra_metadata or {})})
    save_image(output, result.image, meta, quality=cfg.quality)
    checkpoint.remove()
    rep.note(f"wrote {output}")
    return result


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
    from ..dream.zoom import STATE_FILE, zoom_frames  # noqa: PLC0415

    cfg, rep = _settings("zoom_file", config, session, reporter)
    out_dir = Path(out_dir)
    seed_name = cfg.names.get("seed", "seed")
    if cfg.seed is None and (out_dir / STATE_FILE).exists():
        raise DeepDreamError(f"{out_dir} holds an unfinished run; repeat it with its {seed_name} "
                             f"(see {out_dir}/zoom.json)")
    input_path = None if input_path is None else Path(input_path)
    img = load_input(input_path)
    session = session or DreamSession(cfg, rep)
    octave_n = session.octaves_for(*img.shape[:2])
    session.load()  # the weights' hash goes into the parameters
    seed = choose_seed(cfg, rep)
    spec = session.spec
    params = dict(session.params(octave_n), seed=seed, model=spec.model, weights_sha1=spec.weights_sha1,
                  input=str(input_path) if input_path else None)
    meta = output_metadata("zoom", params, seed, spec, session.device, input_path, file_sha1(input_path))

    def on_frame(i: int) -> None:
        rep.note(f"frame {i + 1}/{zoom.frames} written")

    start = zoom_frames(lambda frame, rng: session.dream(frame, rng, label="frame").image, img, out_dir,
                        zoom.frames, np.random.RandomState(seed), scale=zoom.scale, params=params, metadata=meta,
                        on_frame=on_frame)
    if start > 0:
        rep.note(f"resumed at frame {start}")
    return start
