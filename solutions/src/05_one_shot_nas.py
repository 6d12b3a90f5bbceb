# %% [markdown]
# # Lab 05: One-shot NAS
#
# Lab 04 chose the search space: one width multiplier and one input resolution. TinyNAS's second
# stage (MCUNet, section 3.1, "resource-constrained model specialization") finds the best network
# *inside* that space for the microcontroller. Training each of the $10^{20}$ candidates is out
# of the question, so MCUNet searches with weight sharing, in the manner of Once-for-All (OFA,
# Cai et al., ICLR 2020): train **one supernet** whose weights every subnet shares, then run an
# **evolutionary search** that scores each candidate with the supernet's weights, without
# training it, and keeps only candidates that fit the SRAM, Flash and MAC limits. MCUNetV2
# (section 3.3) adds the patch-based inference plan of Lab 03 to the genome, so network and
# schedule are searched together.
#
# **Learning goals**
# 1. Take every subnet out of one set of weights: elastic kernels (centre crop + learned
#    transform), elastic expansion (channel slicing) and elastic depth (skipping blocks).
# 2. Train a supernet with the sandwich rule, and recalibrate each subnet's BatchNorm statistics
#    before it is scored.
# 3. Write the evolutionary search loop under SRAM, Flash and MAC limits.
# 4. Fit an accuracy predictor to (subnet, accuracy) pairs and measure how well it ranks subnets,
#    against the supernet's own ranking.
# 5. Read the result as a Pareto front (accuracy against MACs and peak SRAM), and judge how much
#    a supernet trained for a minute on a CPU can tell you.
#
# **Expected runtime**: about two minutes on a 2-core laptop CPU the first time (it trains a
# small supernet and caches it), about a minute after that. **Points**: 10 (four
# exercises: elastic kernels 2, BatchNorm recalibration 2, the evolution loop 3, the accuracy
# predictor 3).
#
# **Expected figures** (a correct run; the book shows them): one channel's 7x7, 5x5 and 3x3
# kernels; per-subnet loss curves of sandwich-rule training; how far shared BatchNorm statistics
# are from each subnet's own; fitness per generation of the evolution; the accuracy predictor's
# predictions against the measured scores, with Kendall's tau; Pareto fronts of accuracy against
# MACs and peak SRAM beside the space's random subnets.
#
# Write your code between the lines marked `# YOUR CODE HERE`; keep the function names. Each
# exercise says what to do (TODO), how (APPROACH), a HINT and the result of its visible example.
# **Run All works before you write anything**: an unfinished exercise's test cell says "not
# implemented yet", and the cells after it use the library's reference (with a NOTE) until your
# function works. Grade yourself any time with `mcunet-lite grade my-labs/05_one_shot_nas.ipynb`
# (your copy from `mcunet-lite lab`).

# %%
# %matplotlib inline
import copy
import hashlib
import json
import random

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from mcunet_lite import cache, data, nas, predictor, scenes
from mcunet_lite import evolution as evo
from mcunet_lite import search_space as ss
from mcunet_lite import supernet as sn
from mcunet_lite.errors import UserError
from mcunet_lite.kit.scaffold import or_reference, visible_tests

KB = 1024

# %% [markdown]
# ## 1. One network holds every subnet
#
# The supernet of a (width, resolution) space is its **largest** subnet: every stage at depth 4,
# every depthwise kernel 7x7, every expansion ratio 6. A subnet is a choice of depth per stage
# and of (kernel, expansion) per block; `net.set_active(cfg)` makes the supernet compute that
# subnet and nothing else. The settings below train a deliberately small, CPU-sized supernet
# (64x64 images, width 0.3); section 4 says what that can and cannot show. Set `CHECKPOINT` to a
# file written by `mcunet-lite nas train-supernet` to use a supernet trained for longer instead
# (the last section gives the command); everything below adapts to its space.

# %%
SPACE = dict(width=0.3, resolution=64)
TRAIN = dict(n_train=640, epochs=2, batch_size=32, lr=3e-3, n_random=2, seed=0)
EVAL = dict(n_calib=64, n_val=160)  # BatchNorm-calibration images; validation images per score
CHECKPOINT = None                   # e.g. "supernet.pt" from `mcunet-lite nas train-supernet --out supernet.pt`
# Small networks on small batches: one thread is about as fast as two, and never spins waiting for a
# busy core (on a loaded 2-core machine, two threads made this lab's scoring 6-9 times slower).
torch.set_num_threads(1)

torch.manual_seed(TRAIN["seed"])
net = nas.load_supernet(CHECKPOINT) if CHECKPOINT else sn.Supernet(**SPACE)
WIDTH, RESOLUTION = net.space.width, net.space.resolution


def n_params(module):
    return sum(p.numel() for p in module.parameters())


for name, cfg in (("largest", sn.largest(WIDTH, RESOLUTION)), ("smallest", sn.smallest(WIDTH, RESOLUTION))):
    cost = ss.cost(cfg)
    print(f"{name:8s} subnet: {n_params(sn.extract(net, cfg)):7d} parameters, {cost.sram / KB:5.1f} kB SRAM, "
          f"{cost.flash / KB:5.1f} kB Flash, {cost.macs / 1e6:4.1f}M MACs")
print(f"supernet:        {n_params(net):7d} parameters (the largest subnet plus the kernel transforms)")

# %% [markdown]
# One set of weights, a little larger than the largest subnet's, serves every subnet of the
# space. How the smaller subnets are cut out of it is the subject of the next two sections.
#
# ## 2. Elastic kernels (2 points)
#
# Each depthwise layer stores one 7x7 kernel per channel. A subnet that asks for a 5x5 kernel
# takes the **centre** 5x5 of it; a 3x3 kernel is the centre of that 5x5 kernel. Sharing the
# centre forces one set of numbers to serve three roles, and OFA (elastic kernel size, in its
# progressive shrinking) found that this hurts: the centre of a good 7x7 kernel is not a good
# 5x5 kernel. So each layer also learns a **kernel transformation matrix** per step, 25x25 for
# 7 -> 5 and 9x9 for 5 -> 3, shared by all its channels: 706 extra parameters per layer instead
# of separate kernels. The matrices start as the identity, so at first the small kernels are
# exactly the crops.
#
# Write `elastic_kernel(weight, transforms, kernel)`. `weight` is a float tensor of shape
# `(C, 1, 7, 7)` (C channels); `transforms` is `{5: T5, 3: T3}` with `T5` of shape `(25, 25)` and
# `T3` of shape `(9, 9)`; `kernel` is 3, 5 or 7. Return the `(C, 1, kernel, kernel)` weight the
# subnet uses:
# - kernel 7: the weight itself;
# - kernel 5: for every channel, the centre 5x5, flattened row by row into 25 numbers (a row
#   vector $v$), multiplied as $v \cdot T_5$, and reshaped to 5x5;
# - kernel 3: the kernel-5 result's centre 3x3, flattened, times $T_3$, reshaped to 3x3.

# %% solution=true grade_id="elastic_kernel"
def elastic_kernel(weight, transforms, kernel):
    """The (C, 1, kernel, kernel) depthwise weight of a subnet: nested centre crops of the 7x7
    weight, each flattened and multiplied by its step's transformation matrix."""
    # TODO: the (C, 1, kernel, kernel) weight: 7 -> the weight itself; 5 -> its centre 5x5 times
    #   transforms[5]; 3 -> the kernel-5 result's centre 3x3 times transforms[3].
    # APPROACH: loop over sizes 5 then 3 while size >= kernel: crop the centre of the current
    #   weight, reshape to (C, size * size), multiply by transforms[size], reshape back.
    # HINT: the centre of an s x s kernel starts at (s - size) // 2; `@` multiplies matrices.
    # EXAMPLE: elastic_kernel(torch.arange(49.0).reshape(1, 1, 7, 7), identities, 3) -> the values
    #   16, 17, 18, 23, 24, 25, 30, 31, 32
    ### BEGIN SOLUTION
    w = weight
    for size in (5, 3):
        if size < kernel:
            break
        cut = (w.shape[-1] - size) // 2
        centre = w[:, :, cut:cut + size, cut:cut + size]
        w = (centre.reshape(len(w), size * size) @ transforms[size]).reshape(len(w), 1, size, size)
    return w
    ### END SOLUTION


# %% points=2 grade_id="elastic_kernel_tests"
w = torch.arange(49.0).reshape(1, 1, 7, 7)
eye = {5: torch.eye(25), 3: torch.eye(9)}
reverse = torch.eye(9).flip(0)  # v . reverse = v backwards
with visible_tests("elastic_kernel"):
    assert elastic_kernel(w, eye, 7).shape == (1, 1, 7, 7)
    assert elastic_kernel(w, eye, 5).flatten().tolist()[:5] == [8, 9, 10, 11, 12]
    assert elastic_kernel(w, eye, 3).flatten().tolist() == [16, 17, 18, 23, 24, 25, 30, 31, 32]
    assert elastic_kernel(w, {5: 2 * torch.eye(25), 3: reverse}, 3).flatten().tolist() == \
        [64, 62, 60, 50, 48, 46, 36, 34, 32]
### BEGIN HIDDEN TESTS
from mcunet_lite.kit import checks
_r = checks.run("05_one_shot_nas", "elastic_kernel", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# Your function against the supernet's own depthwise layers (`kernel_weight`), and the three
# kernels of one channel. The boxes mark the centres the smaller kernels start from.

# %%
# NBVAL_CHECK_OUTPUT
def transforms_of(dw):
    return {int(s): t for s, t in dw.transforms.items()}


layers = [block.depthwise for blocks in net.stages for block in blocks]
with torch.no_grad():
    worst = max((or_reference(elastic_kernel)(dw.weight, transforms_of(dw), k) - dw.kernel_weight(k, len(dw.weight)))
                .abs().max()
                .item() for dw in layers for k in ss.KERNELS)
print(f"every layer and kernel size equals the supernet's kernel (to 1e-6): {worst < 1e-6}")


# %%
def draw_kernels(dw, channel=0, title=""):
    """A channel's 7x7 weight and the 5x5 and 3x3 kernels the subnets use."""
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.8))
    with torch.no_grad():
        kernels = [or_reference(elastic_kernel)(dw.weight, transforms_of(dw), k)[channel, 0].numpy() for k in (7, 5, 3)]
    lim = max(abs(k).max() for k in kernels)
    for ax, k in zip(axes, kernels):
        ax.imshow(k, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{len(k)}x{len(k)}")
        ax.set_xticks([])
        ax.set_yticks([])
        for inner in (5, 3):
            if inner < len(k):
                corner = (len(k) - inner) / 2 - 0.5
                ax.add_patch(plt.Rectangle((corner, corner), inner, inner, fill=False, lw=1.5, ls="--"))
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


draw_kernels(net.stages[2][0].depthwise, title="stage 2, block 0, channel 0: before training")

# %% [markdown]
# ## 3. Elastic expansion and depth
#
# **Expansion** works by channel slicing. A block with `c` input channels and expansion `e` uses
# the first `e * c` output channels of the expansion conv, the same channels of the depthwise
# conv and the first `e * c` input channels of the projection: every smaller block is a slice
# of the largest one, so all expansion ratios train the same first channels. (OFA also sorts
# channels by importance before slicing; here the first channels are simply the ones that every
# subnet trains.) **Depth** skips blocks: a stage of depth `d` runs its first `d` blocks and
# leaves out the rest. The first block of a stage, which changes the stride and the width, always
# runs; the skipped ones are residual blocks, so leaving them out keeps every shape.
#
# `sn.extract(net, cfg)` copies exactly those slices (and transformed kernels) into a plain
# network, the one to fine-tune, quantize and deploy. Here is what a random subnet takes out of
# the supernet, and a check that the extracted network computes what the supernet computes:

# %%
# NBVAL_CHECK_OUTPUT
cfg = ss.sample(random.Random(5), WIDTH, RESOLUTION)
for i, (stage, blocks) in enumerate(zip(cfg.stages, net.stages)):
    b, first = stage.blocks[0], blocks[0]
    cin = first.expand.weight.shape[1] if first.expand is not None else len(first.depthwise.weight)
    print(f"stage {i}: runs {stage.depth} of {len(blocks)} blocks; its first block: kernel {b.kernel} of 7, "
          f"{cin * b.expand:3d} of {len(first.depthwise.weight):3d} expanded channels")
demo = copy.deepcopy(net)  # recalibrating changes BatchNorm statistics: keep the supernet's own
demo.set_active(cfg)
sn.recalibrate_bn(demo, torch.randn(32, 3, RESOLUTION, RESOLUTION))
demo.eval()
sub = sn.extract(demo, cfg).eval()
x = torch.randn(8, 3, RESOLUTION, RESOLUTION)
with torch.no_grad():
    diff = (sub(x) - demo(x)).abs().max().item()
print(f"extracted subnet: {n_params(sub)} parameters; same outputs as the supernet (to 1e-5): {diff < 1e-5}")

# %% [markdown]
# ## 4. Training the supernet: the sandwich rule
#
# A supernet must be good *for every subnet at once*. Each training step therefore samples
# several subnets, computes each one's loss on the same batch and adds up their gradients
# before one optimizer step. The **sandwich rule** (Yu and Huang, universally slimmable networks,
# ICCV 2019) fixes two of them: the **largest** and the **smallest** subnet, the two ends of the
# space, plus `n_random` random ones (`sn.sandwich`). Training the ends every step bounds the
# whole space: a subnet in between shares its weights with both.
#
# The loop below is `sn.train` written out, recording every subnet's loss at every step. It
# runs once; its result is cached under `cache.cache_dir()`, keyed by the settings.

# %%
d = nas.synthetic_data(RESOLUTION, TRAIN["n_train"], n_val=2 * EVAL["n_val"], n_calib=EVAL["n_calib"],
                       seed=TRAIN["seed"])
val_x, val_y = d.val_x[:EVAL["n_val"]], d.val_y[:EVAL["n_val"]]       # scores the search
held_x, held_y = d.val_x[EVAL["n_val"]:], d.val_y[EVAL["n_val"]:]     # checks it afterwards


def train_supernet(net, ds, epochs, batch_size, lr, n_random, seed):
    """Sandwich-rule training; returns each step's losses [largest, smallest, random...]."""
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-5)
    rng, losses = random.Random(seed), []
    net.train()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            step = []
            for cfg in sn.sandwich(rng, net.space, n_random):
                net.set_active(cfg)
                loss = F.cross_entropy(net(x), y)
                loss.backward()  # the gradients of all the subnets add up in the shared weights
                step.append(loss.item())
            opt.step()
            losses.append(step)
    net.set_active(net.space)
    return losses


def trained_supernet():
    """The supernet for these settings from the cache, else trained now (and cached)."""
    key = hashlib.sha256(json.dumps({**SPACE, **TRAIN, "data": scenes.VERSION}, sort_keys=True).encode()).hexdigest()
    path = cache.cache_dir() / f"lab05-supernet-{key[:12]}.pt"
    if path.exists():
        try:
            return nas.load_supernet(path), torch.load(path, weights_only=True)["losses"]
        except (UserError, KeyError):  # written by a kit whose supernet differed: train again
            pass
    torch.manual_seed(TRAIN["seed"])
    fresh = sn.Supernet(**SPACE)
    losses = train_supernet(fresh, d.train, TRAIN["epochs"], TRAIN["batch_size"], TRAIN["lr"], TRAIN["n_random"],
                            TRAIN["seed"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"width": WIDTH, "resolution": RESOLUTION, "num_classes": 2, "state": fresh.state_dict(),
                "losses": losses}, path)
    return fresh, losses


if CHECKPOINT:
    losses = None
else:
    net, losses = trained_supernet()
shared_stats = copy.deepcopy(net.state_dict())  # BatchNorm statistics as training left them (section 5)
print(f"supernet loaded from {CHECKPOINT}" if losses is None else
      f"{len(losses)} steps of {len(losses[0])} subnets on {TRAIN['n_train']} images x {TRAIN['epochs']} epochs")

# %%
if losses is not None:
    steps = np.array(losses)
    smooth = lambda v: np.convolve(v, np.ones(5) / 5, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(smooth(steps[:, 0]), label="largest")
    ax.plot(smooth(steps[:, 1]), label="smallest")
    ax.plot(smooth(steps[:, 2:].mean(1)), label=f"random (mean of {steps.shape[1] - 2})")
    ax.axhline(np.log(2), color="k", ls=":", lw=1, label="chance (ln 2)")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (5-step mean)")
    ax.set_title("Sandwich-rule training: one batch, several subnets per step")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()

chance = max(val_y.float().mean().item(), 1 - val_y.float().mean().item())
for name, cfg in (("largest", sn.largest(WIDTH, RESOLUTION)), ("smallest", sn.smallest(WIDTH, RESOLUTION))):
    print(f"{name:8s} subnet: validation accuracy {sn.accuracy(net, cfg, d.calib, val_x, val_y):.3f} "
          f"({len(val_y)} images; always answering the majority class scores {chance:.3f})")
moved = [(t - torch.eye(len(t))).abs().mean().item() for blocks in net.stages for b in blocks
         for t in b.depthwise.transforms.values()]
print(f"kernel transforms: mean |T - I| = {np.mean(moved):.4f} (0 at the start)")
draw_kernels(net.stages[2][0].depthwise, title="the same channel after training")

# %% [markdown]
# **Be honest about this supernet.** With the default settings its loss stays at ln 2 and its
# subnets score within noise of the majority-class rate (one score on 160 images has a standard
# error of 4 points): 40 steps on 640 images of 64x64 pixels teach a depthwise network nothing
# about people. Depthwise MBConv networks learn the synthetic VWW slowly, and the sandwich rule
# multiplies the cost of every step by the number of subnets it trains. What follows shows the
# *mechanics* of one-shot NAS on real supernet weights; which subnet wins on these scores says
# nothing about which subnet is better. Section 7 measures exactly that, and the last section
# says what a longer training bought on the course machine.
#
# ## 5. BatchNorm recalibration (2 points)
#
# During training every BatchNorm layer keeps running averages of its inputs' mean and variance,
# but the inputs came from a different subnet at every step: the averages describe a mixture of
# subnets and fit none of them. A smaller subnet has fewer channels feeding each output and
# smaller kernels, so its activations have other statistics. Scoring it with the shared
# statistics scores a different network. OFA and the slimmable networks therefore **recalibrate**:
# before scoring a subnet, run a few hundred training images through it in training mode and
# keep the statistics it actually produces (no gradients, no weight changes). `sn.accuracy` does
# this for every subnet it scores.
#
# Write `recalibrate_bn(net, images, batch_size)`; `net` is a network (the supernet with a subnet
# active, or any PyTorch model), `images` a float tensor `(N, 3, H, W)`. It returns nothing; it
# leaves new statistics in the network:
# 1. for every BatchNorm layer (`isinstance(m, torch.nn.BatchNorm2d)` over `net.modules()`; the
#    supernet's elastic layers are subclasses): `m.reset_running_stats()` (mean 0, variance 1,
#    batch count 0) and `m.momentum = None`. With momentum None, PyTorch keeps the *exact average*
#    of the batches' statistics (the k-th batch gets weight 1/k) instead of a moving average that
#    would still remember the reset values;
# 2. the network in training mode (BatchNorm updates its statistics only then), the images run
#    through in order, in batches of `batch_size` (the last one may be smaller), under
#    `torch.no_grad()`;
# 3. each layer's momentum and the network's mode (`net.training`) restored as they were.

# %% solution=true grade_id="recalibrate_bn"
def recalibrate_bn(net, images, batch_size):
    """Re-estimate every BatchNorm layer's running statistics on `images` for the network as it
    is now (one subnet of the supernet): exact averages over the batches, no gradients."""
    # TODO: reset every BatchNorm layer (statistics and batch count) with momentum None, run the
    #   images through in training mode in batches of `batch_size`, then restore momenta and mode.
    # APPROACH: collect the layers and their momenta; reset; remember net.training; net.train();
    #   with torch.no_grad(): net(images[i:i + batch_size]) for i in range(0, len(images), batch_size);
    #   put the momenta back; net.train(the remembered mode).
    # HINT: m.reset_running_stats() also zeroes num_batches_tracked, which momentum None counts on.
    # EXAMPLE: a lone BatchNorm2d(3) on 2 images of ones and 2 of threes, batch_size=2 -> running_mean
    #   [2, 2, 2] (the average of the batch means 1 and 3), running_var [0, 0, 0]
    ### BEGIN SOLUTION
    layers = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    was_training = net.training
    net.train()
    with torch.set_grad_enabled(False):  # statistics only: no graph, no gradients
        for i in range(0, len(images), batch_size):
            net(images[i:i + batch_size])
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    net.train(was_training)
    ### END SOLUTION


# %% points=2 grade_id="recalibrate_bn_tests"
toy = torch.nn.Sequential(torch.nn.BatchNorm2d(3)).eval()
ones_threes = torch.cat([torch.ones(2, 3, 4, 4), torch.full((2, 3, 4, 4), 3.0)])
small_cfg = sn.smallest(WIDTH, RESOLUTION)
mine, library = copy.deepcopy(net), copy.deepcopy(net)
mine.set_active(small_cfg)
library.set_active(small_cfg)
sn.recalibrate_bn(library, d.calib[:40], 16)
with visible_tests("recalibrate_bn"):
    recalibrate_bn(toy, ones_threes, 2)
    assert toy[0].running_mean.tolist() == [2.0, 2.0, 2.0] and toy[0].running_var.tolist() == [0.0, 0.0, 0.0]
    assert not toy.training and toy[0].momentum == 0.1                 # mode and momentum restored
    recalibrate_bn(mine, d.calib[:40], 16)                             # the supernet: as the library's
    assert all(torch.allclose(a.running_var, b.running_var, rtol=1e-4) for a, b in zip(
        (m for m in mine.modules() if isinstance(m, torch.nn.BatchNorm2d)),
        (m for m in library.modules() if isinstance(m, torch.nn.BatchNorm2d))))
### BEGIN HIDDEN TESTS
_r = checks.run("05_one_shot_nas", "recalibrate_bn", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# With your recalibration: each subnet's accuracy with the statistics training left behind and
# with its own, and, layer by layer, how far the shared variances are from the subnet's own.

# %%
def recalibrated_accuracy(cfg, x, y):
    """Accuracy of subnet `cfg` on (x, y) after recalibrating on the calibration images."""
    net.set_active(cfg)
    or_reference(recalibrate_bn)(net, d.calib, 100)
    net.eval()
    with torch.no_grad():
        return (net(x).argmax(1) == y).float().mean().item()


def channels_seen(cfg):
    """{BatchNorm layer: channels it normalises} for the layers subnet `cfg` runs, in order."""
    seen = {}

    def record(module, inputs, output):
        seen[module] = inputs[0].shape[1]

    hooks = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    net.set_active(cfg)
    net.eval()
    with torch.no_grad():
        net(val_x[:2])
    for h in hooks:
        h.remove()
    return seen


def shared_vs_recalibrated(cfg):
    """Accuracy with the shared statistics, then recalibrated; per-layer variance error of the shared ones."""
    net.load_state_dict(shared_stats)
    seen = channels_seen(cfg)
    with torch.no_grad():
        before = (net(val_x).argmax(1) == val_y).float().mean().item()
    shared = {m: m.running_var[:c].clone() for m, c in seen.items()}
    after = recalibrated_accuracy(cfg, val_x, val_y)
    errors = [((shared[m] - m.running_var[:c]).abs() / m.running_var[:c]).mean().item() for m, c in seen.items()]
    return before, after, errors


fig, ax = plt.subplots(figsize=(7, 3))
for name, cfg in (("largest", sn.largest(WIDTH, RESOLUTION)), ("smallest", sn.smallest(WIDTH, RESOLUTION))):
    before, after, errors = shared_vs_recalibrated(cfg)
    print(f"{name:8s} subnet: accuracy {before:.3f} with the shared statistics, {after:.3f} recalibrated; "
          f"shared variances off by {np.mean(errors):.0%} on average")
    ax.plot(errors, marker=".", label=name)
ax.set_yscale("log")
ax.set_xlabel("BatchNorm layer (in order)")
ax.set_ylabel("|shared - own| / own variance")
ax.set_title("How far the shared statistics are from each subnet's own")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The accuracies say little here (this supernet is at chance either way); the statistics say
# everything. The shared variances miss the largest subnet's own by about a quarter and the
# smallest subnet's by about their own size, layer after layer, and each layer's error feeds
# the next. The smallest subnet is the furthest from the mixture the shared statistics average.
# Recalibration costs one forward pass over `n_calib` images per subnet, far less than training
# it, and it is the reason a trained supernet's scores are usable at all.
#
# ## 6. The limits
#
# The search keeps only subnets that fit the microcontroller. A subnet **fits** an
# `evo.Limits(sram, flash, macs)` when its peak SRAM (the scheduler's bound from Lab 02) is at
# most `sram` bytes, its Flash at most `flash` bytes and, when `macs` is not 0, its MACs at most
# `macs` (`macs == 0` means "no MAC limit": latency is not constrained). `evo.fits(candidate,
# limits)` checks this for an `evo.Candidate` (a genome: the subnet's config `.cfg`, and the
# patch plan in MCUNetV2's joint search) and keeps its cost in `candidate.cost`.

# %% [markdown]
# This lab's limits sit at the **median** cost of the space's random subnets, one resource at a
# time: a microcontroller for which the space is about right. (With MCUNet's real budgets, 320 kB
# SRAM and 1 MB Flash, Lab 04 chose width 0.5 at 192 px, a space far too costly to train on a
# laptop.) The search will have to find subnets that fit all three at once:

# %%
# NBVAL_CHECK_OUTPUT
rng = random.Random(0)
population = [ss.sample(rng, WIDTH, RESOLUTION) for _ in range(200)]
costs = [ss.cost(cfg) for cfg in population]
LIMITS = evo.Limits(*(int(np.median([getattr(c, f) for c in costs])) for f in ("sram", "flash", "macs")))
print(f"limits: {LIMITS.sram / KB:.1f} kB SRAM, {LIMITS.flash / KB:.1f} kB Flash, {LIMITS.macs / 1e6:.2f}M MACs")
print(f"random subnets that fit all three: {np.mean([evo.fits(evo.Candidate(cfg), LIMITS) for cfg in population]):.0%}")

# %% [markdown]
# ## 7. Evolution (3 points)
#
# MCUNet's search is evolutionary (following OFA and single-path one-shot NAS): a **population**
# of subnets that fit, all scored; the best `parents` survive; **mutations** (each depth, kernel
# and expansion re-drawn with a small probability) and **crossovers** (each choice taken from one
# of two parents) refill it; repeat for a number of generations. Children that do not fit are
# drawn again. MCUNet's defaults: population 100, 20 parents, 50 mutations and 50 crossovers per
# generation, 30 generations. The library has the two operators, `evo.mutate` and `evo.crossover`:

# %%
# NBVAL_CHECK_OUTPUT
def genome(cfg):
    """A subnet as text: each searchable stage's blocks as kernel/expansion."""
    return " | ".join(" ".join(f"k{b.kernel}e{b.expand}" for b in s.blocks) for s in cfg.stages[1:-1])


parent = evo.Candidate(ss.sample(random.Random(1), WIDTH, RESOLUTION))
other = evo.Candidate(ss.sample(random.Random(3), WIDTH, RESOLUTION))
print("parent:    ", genome(parent.cfg))
print("mutated:   ", genome(evo.mutate(parent, random.Random(2), prob=0.3).cfg))
print("other:     ", genome(other.cfg))
print("crossover: ", genome(evo.crossover(parent, other, random.Random(4)).cfg))

# %% [markdown]
# Both return a new `evo.Candidate` and leave the parents as they were. The loop around them is
# yours. Write `evolution_search(width, resolution, limits, fitness, rng, population, parents,
# mutations, crossovers, generations)`: `fitness(candidate)` returns a number (higher is
# better), `rng` is a `random.Random`, the rest are numbers. Return `(final population, history)`:
# 1. **First population**: `population` times, draw `evo.Candidate(ss.sample(rng, width,
#    resolution))` until one fits (`evo.fits(c, limits)`); score each: `c.accuracy = fitness(c)`.
# 2. **Each of the `generations`**: sort the population by decreasing `.accuracy` (ties keep
#    their order, as `sorted(..., reverse=True)` does); append the best fitness to `history`;
#    the first `parents` are `top`. Then `mutations` children, each drawn as
#    `evo.mutate(rng.choice(top), rng)` until one fits (a fresh parent for every try), then
#    `crossovers` children, each `evo.crossover(*rng.sample(top, 2), rng)` until one fits. Score
#    the children; the next population is `top`, then the mutated, then the crossed-over children.
# 3. After the last generation sort once more and append the best fitness (`history` has
#    `generations + 1` numbers); return the sorted population and `history`.
#
# When 1000 draws in a row do not fit, raise an error (`UserError`) instead of drawing forever:
# the limits are too tight for this space (the library does the same).
#
# A search is random: two correct loops agree only if they make the same draws, so the order
# above is part of the task. The grader runs the library's loop (`evo.search(..., rng=rng)`) with
# the same `rng` and compares populations and histories exactly, after checking what any correct
# loop must give (every candidate fits, `generations + 1` history entries, a sorted population).

# %% solution=true grade_id="evolution_search"
def evolution_search(width, resolution, limits, fitness, rng, population, parents, mutations, crossovers,
                     generations):
    """MCUNet's evolutionary search: the fittest `parents` survive each generation, and mutations
    and crossovers of them that fit the limits refill the population."""
    # TODO: (final population sorted best first, history of the best fitness per generation + 1).
    # APPROACH: a helper that repeats a draw until evo.fits(candidate, limits), then scores it;
    #   the first population from ss.sample; per generation sort, record, keep `top`, draw the
    #   mutated then the crossed-over children, population = top + children; sort and record once more.
    # HINT: pass the draw as a function (a lambda), so every retry draws its parents again; give
    #   up after 1000 tries with `raise UserError(...)`.
    # EXAMPLE: evolution_search(WIDTH, RESOLUTION, LIMITS, lambda c: c.cost.macs, random.Random(0),
    #   8, 3, 3, 3, 2) -> a population of 9 (3 parents + 6 children) and a history of 3 MAC counts
    ### BEGIN SOLUTION
    def fitting(draw):
        for _ in range(1000):
            c = draw()
            if evo.fits(c, limits):
                c.accuracy = fitness(c)
                return c
        raise UserError("no subnet within the limits in 1000 draws")

    pop = [fitting(lambda: evo.Candidate(ss.sample(rng, width, resolution))) for _ in range(population)]
    history = []
    for _ in range(generations):
        pop = sorted(pop, key=lambda c: c.accuracy, reverse=True)
        history.append(pop[0].accuracy)
        top = pop[:parents]
        children = [fitting(lambda: evo.mutate(rng.choice(top), rng)) for _ in range(mutations)]
        children += [fitting(lambda: evo.crossover(*rng.sample(top, 2), rng)) for _ in range(crossovers)]
        pop = top + children
    pop = sorted(pop, key=lambda c: c.accuracy, reverse=True)
    history.append(pop[0].accuracy)
    return pop, history
    ### END SOLUTION


# %% points=3 grade_id="evolution_search_tests"
macs = lambda c: c.cost.macs  # evo.fits leaves the candidate's cost in c.cost
with visible_tests("evolution_search"):
    pop, history = evolution_search(WIDTH, RESOLUTION, LIMITS, macs, random.Random(0), 8, 3, 3, 3, 2)
    assert len(pop) == 9 and len(history) == 3 and history == sorted(history)  # the parents survive
    assert all(evo.fits(c, LIMITS) for c in pop) and pop[0].accuracy == history[-1]
    assert [c.accuracy for c in pop] == sorted((c.accuracy for c in pop), reverse=True)
    lib = evo.search(WIDTH, RESOLUTION, LIMITS, macs, 8, 3, 3, 3, 2, rng=random.Random(0))
    assert history == lib.history and [genome(c.cfg) for c in pop] == [genome(c.cfg) for c in lib.population]
### BEGIN HIDDEN TESTS
_r = checks.run("05_one_shot_nas", "evolution_search", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# First the evolution with a fitness that needs no supernet: **MACs**, the amount of computation
# (more is usually more accurate, the bet of Lab 04), under the SRAM and Flash limits only (with
# the MAC limit as well it would simply stop at that limit). Generation after generation the
# population computes more in the same memory, and no candidate it ever scores breaks a limit:

# %%
# NBVAL_CHECK_OUTPUT
def logged(fitness):
    """`fitness`, logging every candidate it scores, plus a `progress` hook that marks where each
    generation's new children start in the log."""
    log = {"candidates": [], "scores": [], "starts": []}

    def score(c):
        log["candidates"].append(c)
        log["scores"].append(fitness(c))
        return log["scores"][-1]

    return score, lambda generation, best: log["starts"].append(len(log["scores"])), log


def children_means(log):
    """Mean score of the first population, then of each generation's new (not yet scored) children."""
    ends = log["starts"] + [len(log["scores"])]
    return [float(np.mean(log["scores"][a:b])) if b > a else np.nan for a, b in zip([0] + ends[:-1], ends)]


memory_only = evo.Limits(LIMITS.sram, LIMITS.flash)
score, progress, macs_log = logged(lambda c: c.cost.macs / 1e6)
by_macs = evo.search(WIDTH, RESOLUTION, memory_only, score, population=30, parents=6, mutations=12, crossovers=12,
                     generations=10, seed=0, progress=progress)
print("best MACs (M) per generation:", [round(v, 2) for v in by_macs.history])
print("mean MACs (M) of the new children:", [round(v, 2) for v in children_means(macs_log)])
print(f"{by_macs.evaluated} subnets scored, every one fits: "
      f"{all(evo.fits(evo.Candidate(c.cfg), memory_only) for c in macs_log['candidates'])}")
print(f"best: {genome(by_macs.best.cfg)}\n  {by_macs.best.cost.sram / KB:.1f} kB SRAM, "
      f"{by_macs.best.cost.flash / KB:.1f} kB Flash, {by_macs.best.cost.macs / 1e6:.2f}M MACs")
_, yours = or_reference(evolution_search)(WIDTH, RESOLUTION, memory_only, lambda c: c.cost.macs / 1e6,
                                          random.Random(0), 30, 6, 12, 12, 10)
print(f"your loop, the same seed: the same best MACs in every generation: {yours == by_macs.history}")

# %% [markdown]
# Now the real fitness: each candidate's supernet accuracy on `n_val` validation images after
# BatchNorm recalibration (what `nas.fitness` computes), under all three limits. It is far more
# costly (a recalibration and a validation pass per candidate), so the search is small:
# population 16, 4 parents, 6 + 6 children, 5 generations. Every scored candidate is kept for
# the next sections.

# %%
score, progress, accuracy_log = logged(lambda c: sn.accuracy(net, c.cfg, d.calib, val_x, val_y))
by_accuracy = evo.search(WIDTH, RESOLUTION, LIMITS, score, population=16, parents=4, mutations=6, crossovers=6,
                         generations=5, seed=0, progress=progress)
scored = accuracy_log["candidates"]  # each with its .cost and .accuracy
best = by_accuracy.best
print(f"{by_accuracy.evaluated} subnets scored; best supernet accuracy per generation:",
      [round(v, 3) for v in by_accuracy.history])
print("mean accuracy of the new children:", [round(v, 3) for v in children_means(accuracy_log)])
print(f"winner: {genome(best.cfg)}\n  {best.cost.sram / KB:.1f} kB SRAM, {best.cost.flash / KB:.1f} kB Flash, "
      f"{best.cost.macs / 1e6:.2f}M MACs, supernet accuracy {best.accuracy:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for ax, result, log, label in ((axes[0], by_macs, macs_log, "MACs (M)"),
                               (axes[1], by_accuracy, accuracy_log, "supernet accuracy")):
    ax.plot(result.history, marker="o", label="best in the population")
    ax.plot(children_means(log), marker="s", ls="--", label="mean of the new children")
    ax.set_xlabel("generation")
    ax.set_ylabel(label)
    ax.legend(fontsize=8)
fig.suptitle("Evolution: fitness per generation")
fig.tight_layout()
plt.show()

# %% [markdown]
# The best score can only rise: the parents survive each generation. The children's mean says
# whether mutation and crossover of good parents make good children: with MACs as the fitness
# they do, generation after generation. With the supernet's scores, look at the numbers above.
# And is the winner *better*, or only luckier? Each score comes from `n_val` images, and the
# winner is the maximum of dozens of noisy scores, so it is biased upward (the winner's curse).
# Score the best candidates again on validation images the search never saw:

# %%
top = sorted(scored, key=lambda c: -c.accuracy)[:6]
again = [sn.accuracy(net, c.cfg, d.calib, held_x, held_y) for c in top]
for c, acc in zip(top, again):
    print(f"fitness {c.accuracy:.3f} -> held-out {acc:.3f}   ({c.cost.macs / 1e6:.2f}M MACs)")
print(f"top {len(top)}: mean fitness {np.mean([c.accuracy for c in top]):.3f}, mean held-out accuracy "
      f"{np.mean(again):.3f}; mean fitness of all {len(scored)} scored subnets "
      f"{np.mean([c.accuracy for c in scored]):.3f}")
print(f"noise of one score ({len(val_y)} images, binomial standard error): "
      f"{np.sqrt(chance * (1 - chance) / len(val_y)):.3f}")

# %% [markdown]
# With the default supernet the differences between candidates are of the size of one score's
# noise, the children are no better than their parents' generation, and on fresh images the top
# candidates fall back to (or below) the average of everything scored: the search selected
# noise. That is the honest result of a minute of CPU. MCUNet trains its
# supernet for many GPU-hours, so that the scores of two subnets differ by more than their
# noise; only then is the ranking worth searching. Everything else (the limits, the operators,
# the generations) works as shown.
#
# ## 8. An accuracy predictor (3 points)
#
# Every supernet score above costs a BatchNorm recalibration and a validation pass. Once-for-All
# (section 3.4, specialized deployment) pays that price once: it measures a set of (subnet,
# accuracy) pairs, fits an **accuracy predictor** to them (a small MLP on a one-hot encoding of
# the architecture), and lets the evolution query the predictor, which costs microseconds per
# subnet; MIT 6.5940's NAS lab builds one too. Here it is linear: ridge regression on the same
# kind of encoding, exact and fast. What the search needs from a predictor is a *ranking* (which
# of two subnets is better), so we measure it with **Kendall's tau**: over all pairs of held-out
# subnets, the fraction ranked in the same order as the measurement minus the fraction ranked
# the other way (1: the same ranking, 0: unrelated; `predictor.kendall_tau`).
#
# Write `accuracy_predictor(train_cfgs, train_accs, test_cfgs, lam)`: fit on the pairs
# (`train_cfgs[i]`, `train_accs[i]`), return the predicted accuracies of `test_cfgs` (a numpy array).
# 1. **Encoding**, 126 numbers per subnet: for each stage after the first (`cfg.stages[1:]`), each
#    of its block slots (4 in each of the five searchable stages, 1 in the last stage), 6 numbers:
#    one-hot kernel over `ss.KERNELS` = (3, 5, 7), then one-hot expansion over `ss.EXPANDS` =
#    (3, 4, 6). A slot beyond the stage's depth is six zeros, so the depth is encoded too.
# 2. **Ridge regression with an intercept that is not penalised**: `X` the training encodings
#    (n x 126), `y` the accuracies; centre them, `Xc = X - X.mean(0)`, `yc = y - y.mean()`; the
#    weights `w` solve `(Xc.T @ Xc + lam * I) w = Xc.T @ yc`, and the intercept is
#    `b = y.mean() - X.mean(0) @ w`.
# 3. The predictions: the test encodings `@ w + b`.

# %% solution=true grade_id="accuracy_predictor"
def accuracy_predictor(train_cfgs, train_accs, test_cfgs, lam):
    """Ridge regression of accuracy on a one-hot encoding of each block slot's kernel and
    expansion (zeros for skipped slots), intercept unpenalised; predictions for `test_cfgs`."""
    # TODO: encode every subnet (126 numbers), fit ridge regression with an unpenalised intercept on
    #   the training pairs, return the test subnets' predictions.
    # APPROACH: encode(cfg): for slots, stage in zip([4, 4, 4, 4, 4, 1], cfg.stages[1:]): for each
    #   slot j, six numbers (one-hot kernel, one-hot expansion; zeros when j >= stage.depth); then
    #   centre, np.linalg.solve, intercept, predict.
    # HINT: ss.KERNELS.index(block.kernel) is the kernel's position in its one-hot group.
    # EXAMPLE: accuracy_predictor(cfgs, [0.7] * len(cfgs), others, 1.0) -> 0.7 for every subnet
    #   (a constant is fitted exactly: it is all intercept)
    ### BEGIN SOLUTION
    def encode(cfg):
        x = []
        for slots, stage in zip([4, 4, 4, 4, 4, 1], cfg.stages[1:]):
            for j in range(slots):
                onehot = [0.0] * 6
                if j < stage.depth:
                    onehot[ss.KERNELS.index(stage.blocks[j].kernel)] = 1.0
                    onehot[3 + ss.EXPANDS.index(stage.blocks[j].expand)] = 1.0
                x += onehot
        return x

    x, y = np.array([encode(c) for c in train_cfgs]), np.array(train_accs, dtype=np.float64)
    mx, my = x.mean(0), y.mean()
    xc = x - mx
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ (y - my))
    return np.array([encode(c) for c in test_cfgs]) @ w + (my - mx @ w)
    ### END SOLUTION


# %% points=3 grade_id="accuracy_predictor_tests"
some = [ss.sample(random.Random(i), WIDTH, RESOLUTION) for i in range(30)]
mmacs = [ss.cost(cfg).macs / 1e6 for cfg in some]
with visible_tests("accuracy_predictor"):
    guess = accuracy_predictor(some[:20], mmacs[:20], some[20:], 1.0)
    assert np.shape(guess) == (10,)
    assert np.allclose(accuracy_predictor(some, [0.7] * 30, some[:3], 1.0), 0.7)   # all intercept
    assert np.allclose(guess, predictor.fit(some[:20], mmacs[:20], 1.0).predict(some[20:]))
### BEGIN HIDDEN TESTS
_r = checks.run("05_one_shot_nas", "accuracy_predictor", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# First a target the encoding can carry: the MACs of the 200 random subnets of section 6, fitted
# on 150 and predicted for the other 50. Then the real target: the supernet accuracies of every
# subnet the search of section 7 scored, predicted for fresh random subnets that fit the limits
# (scored by the supernet too). The last number is the ceiling for any predictor of these
# scores: how well the supernet's ranking of the same fresh subnets on the `n_val` validation
# images agrees with its ranking on the held-out images.

# %%
mac_pairs = [c.macs / 1e6 for c in costs]
mac_guess = or_reference(accuracy_predictor)(population[:150], mac_pairs[:150], population[150:], 1.0)
tau_macs = predictor.kendall_tau(mac_guess, mac_pairs[150:])

fresh_rng, fresh = random.Random(7), []
while len(fresh) < 20:
    c = evo.Candidate(ss.sample(fresh_rng, WIDTH, RESOLUTION))
    if evo.fits(c, LIMITS):
        fresh.append(c.cfg)
fresh_val = [sn.accuracy(net, cfg, d.calib, val_x, val_y) for cfg in fresh]
fresh_held = [sn.accuracy(net, cfg, d.calib, held_x, held_y) for cfg in fresh]
acc_guess = or_reference(accuracy_predictor)([c.cfg for c in scored], [c.accuracy for c in scored], fresh, 1.0)
tau_acc = predictor.kendall_tau(acc_guess, fresh_val)
tau_self = predictor.kendall_tau(fresh_val, fresh_held)
print(f"MACs: predicted for 50 unseen subnets, Kendall tau {tau_macs:.2f}")
print(f"supernet accuracy: fitted on {len(scored)} searched subnets, tau {tau_acc:.2f} on {len(fresh)} fresh ones")
print(f"the supernet against itself (validation vs held-out images, same {len(fresh)} subnets): tau {tau_self:.2f}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
axes[0].scatter(mac_pairs[150:], mac_guess, s=14)
axes[0].set_xlabel("MACs (M), measured")
axes[0].set_ylabel("predicted")
axes[0].set_title(f"MACs of 50 unseen subnets: tau {tau_macs:.2f}", fontsize=10)
axes[1].scatter(fresh_val, acc_guess, s=14)
axes[1].set_xlabel(f"supernet accuracy ({len(val_y)} validation images)")
axes[1].set_ylabel("predicted")
axes[1].set_title(f"{len(fresh)} fresh subnets: tau {tau_acc:.2f} (supernet vs itself: {tau_self:.2f})", fontsize=10)
fig.suptitle("The accuracy predictor against what it predicts")
fig.tight_layout()
plt.show()

# %% [markdown]
# On MACs, which the encoding nearly determines, the linear predictor ranks subnets it never saw
# almost as the measurement does (with the default settings, a tau close to 0.9): that is what a
# predictor can do when its pairs carry a ranking. On this supernet's accuracies, read the two
# other numbers together. With the default one-minute supernet both are close to 0, within the
# 0.16 by which the tau of 20 unrelated scorings varies by chance: the supernet's scores do not
# even agree with themselves on fresh images (section 7 found the same), so there is no ranking
# for the predictor to learn, and a search driven by it would select noise just as the search on
# the scores did. OFA's predictor is worth its pairs because they come from a supernet trained
# for many GPU-hours, whose scores rank subnets; train a longer supernet (last section) and
# compare these numbers again.
#
# ## 9. The Pareto front
#
# A search returns one winner for one set of limits; the candidates it scored say more. Plot
# accuracy against cost: a subnet is **Pareto-optimal** when no other subnet costs no more and
# scores no less (and is not the very same point). The Pareto front is what any budget would
# pick from: sort the distinct (cost, accuracy) points by cost (the more accurate first on equal
# costs) and keep each point that is more accurate than every cheaper one.

# %%
def pareto_front(points):
    """The (cost, accuracy) points that no other point beats on both, by increasing cost, each once."""
    front = []
    for cost, acc in sorted(set(points), key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((cost, acc))
    return front


# %% [markdown]
# The fronts of every candidate the search scored, against MACs and against peak SRAM, and on
# the right the space itself: 200 random subnets' peak SRAM and MACs, with the region the limits
# allow (Flash, the third limit, is not drawn; subnets that exceed it are marked with x).

# %%
cands = scored
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for ax, cost, unit, scale, limit in ((axes[0], "macs", "MACs (M)", 1e6, LIMITS.macs),
                                     (axes[1], "sram", "peak SRAM (kB)", KB, LIMITS.sram)):
    points = [(getattr(c.cost, cost), c.accuracy) for c in cands]
    front = pareto_front(points)
    ax.scatter([p[0] / scale for p in points], [p[1] for p in points], s=14, alpha=0.5, label="scored subnets")
    ax.step([p[0] / scale for p in front], [p[1] for p in front], where="post", color="tab:red", marker="o",
            label=f"Pareto front ({len(front)})")
    ax.axvline(limit / scale, color="k", ls="--", lw=1, label="limit")
    ax.set_xlabel(unit)
    ax.set_ylabel("supernet accuracy")
    ax.legend(fontsize=7)
ax = axes[2]
ok = [c.flash <= LIMITS.flash for c in costs]
for flash_ok, marker in ((True, "o"), (False, "x")):
    sel = [c for c, f in zip(costs, ok) if f == flash_ok]
    ax.scatter([c.macs / 1e6 for c in sel], [c.sram / KB for c in sel], s=12, marker=marker, alpha=0.5,
               label="random subnets" + ("" if flash_ok else " over the Flash limit"))
ax.fill_between([0, LIMITS.macs / 1e6], 0, LIMITS.sram / KB, color="tab:green", alpha=0.2,
                label="within the SRAM and MAC limits")
ax.scatter([c.cost.macs / 1e6 for c in cands], [c.cost.sram / KB for c in cands], s=12, color="tab:red",
           label="scored by the search")
ax.set_xlim(0, max(c.macs for c in costs) / 1e6 * 1.05)
ax.set_ylim(0, max(c.sram for c in costs) / KB * 1.1)
ax.set_xlabel("MACs (M)")
ax.set_ylabel("peak SRAM (kB)")
ax.legend(fontsize=7)
fig.suptitle("What the search scored, and where it could look")
fig.tight_layout()
plt.show()

# %% [markdown]
# In this space peak SRAM takes only three values: it is set by the first searchable block,
# whose expanded map is the largest tensor of the network (Lab 00: the peak is where the maps
# are largest), so it depends only on that block's expansion ratio. MACs spread widely. The
# front against SRAM therefore has at most three points: under an SRAM budget, the rest of the
# network is free to grow until Flash or MACs stop it. That is why MCUNet limits latency (MACs)
# and Flash as well as SRAM. With the default supernet the
# accuracy axis is noise (section 7): read these fronts for how they are built, not for which
# subnets are on them.
#
# ## 10. MCUNetV2: search the schedule too
#
# Patch-based inference (Lab 03) lowers the peak of the first blocks, so the same SRAM can
# hold a larger input. MCUNetV2's joint search (section 3.3) puts the patch plan into the
# genome: which block ends the patch stage and how many patches per side, mutated and crossed
# over with the rest. At 1.5 times this lab's resolution, with the same SRAM and Flash limits and
# the MACs as fitness (a cost-only search, no supernet needed):

# %%
# NBVAL_CHECK_OUTPUT
bigger = RESOLUTION * 3 // 2
kw = dict(population=16, parents=4, mutations=8, crossovers=8, generations=4, seed=1, max_tries=200)
try:
    evo.search(WIDTH, bigger, memory_only, lambda c: c.cost.macs, **kw)
except UserError as e:
    print(f"layer by layer at {bigger} px:", str(e).split(":")[0])
joint = evo.search(WIDTH, bigger, memory_only, lambda c: c.cost.macs, joint_patch=True, **kw)
split, grid = joint.best.patch
print(f"joint search at {bigger} px: best {joint.best.cost.macs / 1e6:.2f}M MACs in "
      f"{joint.best.cost.sram / KB:.1f} kB SRAM, patch stage up to block {split}, {grid}x{grid} patches")
plain = evo.search(WIDTH, RESOLUTION, memory_only, lambda c: c.cost.macs, **kw)
print(f"layer by layer at {RESOLUTION} px: best {plain.best.cost.macs / 1e6:.2f}M MACs in "
      f"{plain.best.cost.sram / KB:.1f} kB SRAM")

# %% [markdown]
# No subnet fits layer by layer at the larger resolution; with the patch plan in the genome the
# search finds subnets that do, and more computation on a larger image. This is the step that
# lets MCUNetV2 run at higher resolution on the same microcontroller.
#
# ## What next
#
# - **A longer-trained supernet.** `mcunet-lite nas train-supernet --width 0.3 --resolution 96
#   --epochs 6 --n-train 3000 --out supernet.pt` trains the supernet of a space on the synthetic
#   VWW with the same sandwich rule (it runs unchanged under `torchrun`, over several processes
#   or machines). Set `CHECKPOINT = "supernet.pt"` in section 1 and run the lab again. Expect
#   little from this size either: on the course machine (with version 8 of the synthetic set,
#   whose faces were smaller than today's) that command took 12 minutes of one CPU core and left
#   the largest subnet at 52.8% and the smallest at 52.0% on 500 validation images
#   (its training loss had only begun to fall, 0.678 in the sixth epoch), and with it the lab's
#   top candidates again fell back to the average on fresh images. A supernet whose scores rank
#   subnets needs many more epochs and images than that; raise `--epochs` and `--n-train` as far
#   as your machine allows, and check the held-out test of section 7 before trusting a winner.
# - **The search from the command line.** `mcunet-lite nas search --sram 320 --flash 1024
#   [--patch]` chooses the space (Lab 04), trains its supernet and evolves with MCUNet's full
#   defaults.
# - **After the search.** MCUNet fine-tunes the winner: `sn.extract(net, best.cfg)` is an
#   ordinary PyTorch network to train further, then quantize (Lab 01), schedule (Lab 02) and
#   deploy (Lab 06).
