"""TensorFlow side of the energy model: the score matching objectives and the
training loop that minimises them.

Imported only when an energy model is fitted (``import skdensity`` never
loads TensorFlow). The exact score matching loss uses the analytic score and
Laplacian (the same formulas as :mod:`._inference`); parameter gradients come
from automatic differentiation of that loss, which costs a small multiple of
the loss itself, unlike differentiating a Hessian diagonal.
"""

import logging
from contextlib import contextmanager, nullcontext

import numpy as np

__all__ = ["ScoreMatchingTraining", "dsm_loss", "load_tensorflow", "sm_loss", "ssm_loss"]

# The parameters in the order the objectives take them: V, a, W, c, b.
PARAMETER_ORDER = ("filters", "hidden_bias", "expert_weights", "expert_bias", "visible_bias")


# TensorFlow's native start-up notices on a machine without a GPU: they are
# not the user's concern, and every other line it prints is passed on.
_START_UP_NOTICES = (
    "All log messages before absl::InitializeLog()",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
)


def load_tensorflow():
    """Import TensorFlow with its start-up notices on stderr filtered out."""
    import os
    import sys
    import tempfile

    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The notices come from native code, so Python's sys.stderr cannot catch
    # them: descriptor 2 is pointed at a file for the import, then restored.
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery prints its notices now
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = [line for line in lines if not any(n in line for n in _START_UP_NOTICES)]
            if kept:
                sys.stderr.write("".join(kept))
    return tf


@contextmanager
def _quiet_retracing():
    """TensorFlow's Python logger at ERROR for the duration, then as the user
    had it: each ``partial_fit`` call traces its own training graph, which
    TensorFlow reports as "excessive retracing" after five calls."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def activation(tf, h, nonlinearity):
    """``f(h)``, ``f'(h)``, ``f''(h)`` of the first layer's nonlinearity."""
    if nonlinearity == "sigmoid":
        g = tf.sigmoid(h)
        gp = g * (1 - g)
        return g, gp, gp * (1 - 2 * g)
    t = tf.tanh(h)  # -log cosh h = h - softplus(2h) + log 2, without overflow
    return h - tf.math.softplus(2 * h) + np.log(2.0), -t, t * t - 1


def score_and_laplacian(tf, X, V, a, W, c, b, sigma, laplacian=True, nonlinearity="sigmoid"):
    """Analytic score (and Laplacian) of the energy model, batched."""
    g, gp, gpp = activation(tf, tf.matmul(X, V, transpose_b=True) + a, nonlinearity)
    s = tf.sigmoid(tf.matmul(g, W, transpose_b=True) + c)
    u = tf.matmul(s, W)
    psi = -X / sigma**2 + b + tf.matmul(u * gp, V)
    if not laplacian:
        return psi, None
    norms = tf.reduce_sum(V * V, axis=1)
    gram = tf.matmul(V, V, transpose_b=True)
    # quad[n, k] = sum_hh' W[k,h] W[k,h'] * gp[n,h] gp[n,h'] gram[h,h']: one
    # (n, H^2) x (H^2, K) product instead of n small (K, H) x (H, H) ones.
    H = tf.shape(V)[0]
    Q = tf.reshape(gp[:, :, None] * gp[:, None, :] * gram, (-1, H * H))
    P = tf.reshape(W[:, :, None] * W[:, None, :], (-1, H * H))
    quad = tf.matmul(Q, P, transpose_b=True)  # (n, K)
    D = tf.cast(tf.shape(X)[1], X.dtype)
    lap = (
        -D / sigma**2 + tf.linalg.matvec(u * gpp, norms) + tf.reduce_sum(s * (1 - s) * quad, axis=1)
    )
    return psi, lap


def sm_loss(tf, X, params, sigma, nonlinearity="sigmoid"):
    """Exact score matching: mean of ``|score|^2 / 2 + Laplacian``."""
    psi, lap = score_and_laplacian(tf, X, *params, sigma, nonlinearity=nonlinearity)
    return tf.reduce_mean(0.5 * tf.reduce_sum(psi * psi, axis=1) + lap)


def dsm_loss(tf, X, params, sigma, noise, noise_scale, nonlinearity="sigmoid"):
    """Denoising score matching (Vincent 2011): the score at ``x + n e``
    regressed onto ``-e / n``."""
    psi, _ = score_and_laplacian(
        tf, X + noise_scale * noise, *params, sigma, laplacian=False, nonlinearity=nonlinearity
    )
    r = psi + noise / noise_scale
    return tf.reduce_mean(0.5 * tf.reduce_sum(r * r, axis=1))


def ssm_loss(tf, X, params, sigma, v, nonlinearity="sigmoid"):
    """Sliced score matching, variance-reduced (Song et al. 2019):
    ``|score|^2 / 2 + v' (d score / dx) v`` with Gaussian projections ``v``."""
    with tf.GradientTape() as tape:
        tape.watch(X)
        psi, _ = score_and_laplacian(
            tf, X, *params, sigma, laplacian=False, nonlinearity=nonlinearity
        )
        proj = tf.reduce_sum(v * psi)
    jv = tape.gradient(proj, X)
    return tf.reduce_mean(0.5 * tf.reduce_sum(psi * psi, axis=1) + tf.reduce_sum(v * jv, axis=1))


def check_devices(tf, devices):
    """The TensorFlow devices named by ``devices`` (say ``"/cpu:1"`` or
    ``"GPU:0"``), as the full names MirroredStrategy takes; a clear error
    naming the devices there are when one is not among them."""
    available = {}
    for device in tf.config.list_logical_devices():
        spec = tf.DeviceSpec.from_string(device.name)
        available[(spec.device_type, spec.device_index)] = device.name
    names = []
    for device in devices:
        try:
            spec = tf.DeviceSpec.from_string(device if "/" in device else "/" + device)
        except (TypeError, ValueError):
            spec = None
        key = None if spec is None else ((spec.device_type or "").upper(), spec.device_index)
        if key not in available:
            raise ValueError(
                f"devices: {device!r} is not a TensorFlow device here; the devices are "
                f"{sorted(available.values())}."
            )
        names.append(available[key])
    if len(set(names)) != len(names):
        raise ValueError(f"devices names a device more than once: {list(devices)}.")
    return names


class ScoreMatchingTraining:
    """Adam on a score matching objective, with the state early stopping needs.

    Parameters
    ----------
    initial : dict of str to ndarray
        The starting parameters, by name (:data:`PARAMETER_ORDER`).
    trainable : list of str
        The names Adam updates; the others stay fixed.
    X_train, X_val : ndarray
        Training and held-out samples (``X_val`` may be empty).
    val_noise : ndarray
        The held-out set's fixed noise (denoising or sliced objectives).
    objective : {"sm", "dsm", "ssm"}
    sigma, noise_scale, learning_rate : float
    dtype : {"float32", "float64"}
    nonlinearity : {"sigmoid", "logcosh"}, default="sigmoid"
        The first layer's nonlinearity.
    nonnegative : list of str, default=()
        Parameters clipped at zero after every step (projected gradient).
    optimizer_state : dict of str to ndarray, default=None
        Adam's step count and moments from :meth:`optimizer_state` of an
        earlier training of the same parameters (``partial_fit``); None
        starts Adam afresh.
    devices : list of str, default=None
        Train data-parallel on these TensorFlow devices
        (``tf.distribute.MirroredStrategy``); None lets TensorFlow place it.
    """

    def __init__(
        self,
        initial,
        *,
        trainable,
        X_train,
        X_val,
        val_noise,
        objective,
        sigma,
        noise_scale,
        learning_rate,
        dtype,
        nonlinearity="sigmoid",
        nonnegative=(),
        optimizer_state=None,
        devices=None,
    ):
        tf = self.tf = load_tensorflow()
        self.dtype = dtype
        self.dt = tf.float32 if dtype == "float32" else tf.float64
        # several devices: variables mirrored on each, every minibatch split
        # between them, gradients summed across them (data parallelism)
        self.strategy = (
            tf.distribute.MirroredStrategy(check_devices(tf, devices)) if devices else None
        )
        with self.strategy.scope() if self.strategy else nullcontext():
            self.variables = {
                name: tf.Variable(initial[name].astype(dtype)) for name in PARAMETER_ORDER
            }
            self.optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate)
            self.ordered = [self.variables[name] for name in PARAMETER_ORDER]
            self.trainable = [self.variables[name] for name in trainable]
            self.trainable_names = list(trainable)
            # parameters not trained are returned exactly as given, not
            # rounded through a float32 variable
            self.fixed = {
                name: np.asarray(initial[name], dtype=np.float64)
                for name in PARAMETER_ORDER
                if name not in trainable
            }
            # Adam's moments now, beside their parameters, not inside a graph
            self.optimizer.build(self.trainable)
            if optimizer_state is not None:
                self._restore_optimizer(optimizer_state)
        self.objective, self.needs_noise = objective, objective != "sm"
        self.nonlinearity = nonlinearity
        self.nonnegative = [self.variables[name] for name in nonnegative]
        self.sigma = tf.constant(sigma, self.dt)
        self.noise_scale = tf.constant(noise_scale, self.dt)
        self.X_train, self.X_val = X_train, X_val
        self.val_noise = val_noise.astype(dtype)
        self.has_validation = len(X_val) > 0
        self.loss_curve, self.validation_scores = [], []
        self.best_validation, self.no_improvement_count, self.best = np.inf, 0, None
        self._train_epoch = self._build_epoch()

    def loss(self, batch, noise):
        tf = self.tf
        f = self.nonlinearity
        if self.objective == "sm":
            return sm_loss(tf, batch, self.ordered, self.sigma, f)
        if self.objective == "dsm":
            return dsm_loss(tf, batch, self.ordered, self.sigma, noise, self.noise_scale, f)
        return ssm_loss(tf, batch, self.ordered, self.sigma, noise, f)

    def _build_epoch(self):
        """One graph per epoch: the minibatch loop runs inside TensorFlow, so
        a step costs its arithmetic, not a Python round trip."""
        tf = self.tf

        def train_step(batch, noise):
            with tf.GradientTape() as tape:
                loss = self.loss(batch, noise)
            gradients = tape.gradient(loss, self.trainable)
            self.optimizer.apply_gradients(zip(gradients, self.trainable))
            project()
            return loss

        def project():
            for variable in self.nonnegative:
                variable.assign(tf.maximum(variable, 0))

        def replica_step(batch, noise):
            # This device's share of the minibatch (rows r, r + R, ...), its
            # mean loss weighted by that share: the replicas' gradients, which
            # the optimizer sums, then add up to the whole minibatch's.
            context = tf.distribute.get_replica_context()
            r, R = context.replica_id_in_sync_group, context.num_replicas_in_sync
            local, local_noise = batch[r::R], noise[r::R]
            share = tf.cast(tf.shape(local)[0], self.dt) / tf.cast(tf.shape(batch)[0], self.dt)
            with tf.GradientTape() as tape:
                loss = self.loss(local, local_noise) * share
            gradients = tape.gradient(loss, self.trainable)
            self.optimizer.apply_gradients(zip(gradients, self.trainable))
            return loss

        def distributed_step(batch, noise):
            losses = self.strategy.run(replica_step, args=(batch, noise))
            self.strategy.run(project)  # mirrored variables: each replica clips its copy
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

        step = distributed_step if self.strategy else train_step

        @tf.function(reduce_retracing=True)
        def train_epoch(batches, noises):
            total = tf.constant(0.0, self.dt)
            for i in tf.range(tf.shape(batches)[0]):
                total += step(batches[i], noises[i])
            return total

        return train_epoch

    def run_epoch(self, batch_size, rng):
        """One pass over shuffled training data; the mean minibatch objective."""
        with _quiet_retracing():
            return self._run_epoch(batch_size, rng)

    def _run_epoch(self, batch_size, rng):
        tf, X = self.tf, self.X_train
        n, D = X.shape
        bs = min(batch_size, n)
        n_full = n // bs
        perm = rng.permutation(n)
        # full batches in one graph call, the remainder (if any) as one more step
        chunks = [(X[perm[: n_full * bs]].reshape(n_full, bs, D), n_full)]
        if n_full * bs < n:
            chunks.append((X[perm[n_full * bs :]][None], 1))
        total = 0.0
        for batches, _ in chunks:
            noises = (
                rng.standard_normal(batches.shape)
                if self.needs_noise
                else np.zeros(batches.shape[:2] + (0,))
            )
            total += float(
                self._train_epoch(tf.constant(batches, self.dt), tf.constant(noises, self.dt))
            )
        return total / sum(count for _, count in chunks)

    def _moment_slots(self):
        """Adam's variables by name: its step count, and each trainable
        parameter's first and second moments (built in the parameters' order
        after the step count and the learning rate)."""
        variables = self.optimizer.variables
        slots = {"iteration": variables[0]}
        for i, name in enumerate(self.trainable_names):
            slots[name + "_momentum"] = variables[2 + 2 * i]
            slots[name + "_velocity"] = variables[3 + 2 * i]
        return slots

    def _restore_optimizer(self, state):
        slots = self._moment_slots()
        if set(state) != set(slots) or any(
            tuple(slots[k].shape) != np.shape(v) for k, v in state.items()
        ):
            return  # another set of parameters: Adam starts afresh
        for name, value in state.items():
            slots[name].assign(np.asarray(value).astype(slots[name].dtype))

    def optimizer_state(self):
        """Adam's step count and moments as numpy arrays, by name."""
        return {name: np.array(v.numpy()) for name, v in self._moment_slots().items()}

    def validation_objective(self):
        tf = self.tf
        return float(
            self.loss(tf.constant(self.X_val, self.dt), tf.constant(self.val_noise, self.dt))
        )

    def snapshot(self):
        """The current parameters, copied, by name."""
        return {name: v.numpy().copy() for name, v in self.variables.items()}

    def keep_best(self):
        self.best = self.snapshot()

    def final_parameters(self):
        """The parameters with the best held-out objective (the last ones
        without a validation set), as float64 arrays by name."""
        if self.has_validation and self.best is not None:
            values = self.best
        else:
            values = {name: v.numpy() for name, v in self.variables.items()}
        final = {name: np.asarray(value, dtype=np.float64) for name, value in values.items()}
        return {**final, **self.fixed}
