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
# 2. Read how a supernet is trained (the sandwich rule), and recalibrate each subnet's BatchNorm
#    statistics before it is scored.
# 3. Write the evolutionary search loop under SRAM, Flash and MAC limits.
# 4. Fit an accuracy predictor to (subnet, accuracy) pairs and measure how well it ranks subnets,
#    against the supernet's own ranking.
# 5. Check the supernet against the truth: its ranking of subnets against the same subnets
#    trained from scratch (Kendall's tau), and the searched winner against MobileNetV2 scaled to
#    the same memory and against random subnets that fit, all trained from scratch.
# 6. Read the result as a Pareto front (accuracy against MACs and peak SRAM).
#
# The lab uses the course's **trained supernet** and **from-scratch reference** (`mcunet-lite
# assets list`: hours of CPU made them with the kit's own commands, which the lab prints), so
# every accuracy below is one a trained network earned. Training a tiny supernet live is one
# switch away (section 1).
#
# **Expected runtime**: about three minutes on a 2-core laptop CPU. **Points**: 10 (four
# exercises: elastic kernels 2, BatchNorm recalibration 2, the evolution loop 3, the accuracy
# predictor 3).
#
# **Expected figures** (a correct run; the book shows them): one channel's 7x7, 5x5 and 3x3
# kernels before and after training; the supernet's training loss; how far shared BatchNorm
# statistics are from each subnet's own; fitness per generation of the evolution; inherited
# against from-scratch accuracy of subnets spanning the space, with Kendall's tau; the winner
# against MobileNetV2 and random subnets; the accuracy predictor's predictions against the
# measured scores; Pareto fronts of accuracy against MACs and peak SRAM.
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
from torch.utils.data import TensorDataset

from mcunet_lite import assets, cache, data, nas, predictor, scenes, train
from mcunet_lite import evolution as evo
from mcunet_lite import search_space as ss
from mcunet_lite import supernet as sn
from mcunet_lite.errors import UserError
from mcunet_lite.zoo import MBConvConfig
from mcunet_lite.kit.scaffold import or_reference, visible_tests

KB = 1024

# %% [markdown]
# ## 1. One network holds every subnet
#
# The supernet of a (width, resolution) space is its **largest** subnet: every stage at depth 4,
# every depthwise kernel 7x7, every expansion ratio 6. A subnet is a choice of depth per stage
# and of (kernel, expansion) per block; `net.set_active(cfg)` makes the supernet compute that
# subnet and nothing else. By default the lab loads the course's trained supernet (`assets.load`;
# section 4 says how it was trained). Set `TRAIN_LIVE = True` to train a deliberately small one
# here instead (64x64 images, width 0.3, a minute of CPU: it learns nothing, and the lab then shows
# why training matters), or `CHECKPOINT` to a file written by `mcunet-lite nas train-supernet`;
# everything below adapts to the supernet's space.

# %%
TRAIN_LIVE = False                  # True: train a tiny supernet here (SPACE, TRAIN) instead of the shipped one
CHECKPOINT = None                   # or a file from `mcunet-lite nas train-supernet --out supernet.pt`
SPACE = dict(width=0.3, resolution=64)
TRAIN = dict(n_train=640, epochs=2, batch_size=32, lr=3e-3, n_random=2, seed=0)
EVAL = dict(n_calib=256, n_val=500)  # BatchNorm-calibration images; validation images per score
# Small networks on small batches: one thread is about as fast as two, and never spins waiting for a
# busy core (on a loaded 2-core machine, two threads made this lab's scoring 6-9 times slower).
torch.set_num_threads(1)

torch.manual_seed(TRAIN["seed"])
if CHECKPOINT:
    net = nas.load_supernet(CHECKPOINT)
elif TRAIN_LIVE:
    net = sn.Supernet(**SPACE)
else:
    net = assets.load("supernet")
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


draw_kernels(sn.Supernet(WIDTH, RESOLUTION).stages[2][0].depthwise,
             title="stage 2, block 0, channel 0: at initialisation (transforms = identity)")

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
# The loop below is `sn.train` written out, recording every subnet's loss at every step. The
# shipped supernet was trained by `sn.train` (through `mcunet-lite nas train-supernet`); with
# `TRAIN_LIVE` the loop trains the tiny one here (once: its result is cached under
# `cache.cache_dir()`, keyed by the settings).

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


losses = None
if TRAIN_LIVE and not CHECKPOINT:
    net, losses = trained_supernet()
shared_stats = copy.deepcopy(net.state_dict())  # BatchNorm statistics as training left them (section 5)
if losses is not None:
    print(f"{len(losses)} steps of {len(losses[0])} subnets on {TRAIN['n_train']} images x {TRAIN['epochs']} epochs")
elif CHECKPOINT:
    print(f"supernet loaded from {CHECKPOINT}")
else:
    shipped = assets.entry("supernet")
    history = torch.load(assets.path("supernet"), weights_only=True)["history"]
    print(f"the shipped supernet: `{shipped['command']}`\n  {len(history)} epochs, "
          f"{shipped['train_seconds'] / 3600:.1f} hours of one CPU core, synthetic VWW version {shipped['data_version']}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
if losses is not None:
    steps = np.array(losses)
    smooth = lambda v: np.convolve(v, np.ones(5) / 5, mode="valid")
    ax.plot(smooth(steps[:, 0]), label="largest")
    ax.plot(smooth(steps[:, 1]), label="smallest")
    ax.plot(smooth(steps[:, 2:].mean(1)), label=f"random (mean of {steps.shape[1] - 2})")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (5-step mean)")
elif not CHECKPOINT:
    largest_epochs = int(shipped["command"].split("--largest-epochs ")[1].split()[0])
    ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker="o", label="training loss")
    ax.axvspan(0.5, largest_epochs + 0.5, color="tab:orange", alpha=0.15, label="largest subnet only")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean loss of the subnets trained")
ax.axhline(np.log(2), color="k", ls=":", lw=1, label="chance (ln 2)")
ax.set_title("Training the supernet (sandwich rule after the first epochs)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

chance = max(val_y.float().mean().item(), 1 - val_y.float().mean().item())
for name, cfg in (("largest", sn.largest(WIDTH, RESOLUTION)), ("smallest", sn.smallest(WIDTH, RESOLUTION))):
    print(f"{name:8s} subnet: validation accuracy {sn.accuracy(net, cfg, d.calib, val_x, val_y):.3f} "
          f"({len(val_y)} images; always answering the majority class scores {chance:.3f})")
net.load_state_dict(shared_stats)  # sn.accuracy recalibrated BatchNorm: back to the statistics training left
moved = [(t - torch.eye(len(t))).abs().mean().item() for blocks in net.stages for b in blocks
         for t in b.depthwise.transforms.values()]
print(f"kernel transforms: mean |T - I| = {np.mean(moved):.4f} (0 at the start)")
draw_kernels(net.stages[2][0].depthwise, title="the same channel after training")

# %% [markdown]
# The shipped supernet started as OFA does, with epochs that train only the largest subnet (the
# shared weights learn the task with one network before every subnet must share them), then
# trained the sandwich. Its loss stayed near the chance value ln 2 for the whole first epoch (250
# steps of 64 images): a depthwise network needs thousands of steps on this task, and the
# sandwich rule multiplies the cost of every step by the number of subnets it trains. Now both
# ends of the space tell people from empty scenes far above the majority rate, with the same
# weights, and the kernel transforms have moved away from the identity: the 5x5 and 3x3 kernels
# are no longer plain crops. With `TRAIN_LIVE` the minute-long run never leaves ln 2 and both
# subnets score at the majority rate.
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
# With the statistics training left behind, both subnets score below their recalibrated
# accuracy, the smallest at the majority rate: the shared variances miss the largest subnet's
# own by about a sixth and the smallest subnet's by about half, layer after layer, and each
# layer's error feeds the next. The smallest subnet is the furthest from the mixture the
# shared statistics average. Recalibration costs one forward pass over `n_calib` images per
# subnet, far less than training it, and it is the reason a supernet's scores are usable at all
# (section 8 measures it on eight subnets across the space).
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
# This lab's limits are the budget of the course's from-scratch reference (section 8): a
# microcontroller with 64 kB of SRAM and 256 kB of Flash for the network, no MAC limit, for which
# this space is about right. (With MCUNet's real budgets, 320 kB SRAM and 1 MB Flash, Lab 04 chose
# width 0.5 at 192 px, a space far too costly to train on a laptop.) A supernet of another space
# (`TRAIN_LIVE`, `CHECKPOINT`) gets the median SRAM and Flash of its random subnets instead. How
# much of the space fits:

# %%
# NBVAL_CHECK_OUTPUT
rng = random.Random(0)
population = [ss.sample(rng, WIDTH, RESOLUTION) for _ in range(200)]
costs = [ss.cost(cfg) for cfg in population]
info, runs = assets.load("nas-scratch")  # the from-scratch reference: its budget here, its networks in section 8
if (WIDTH, RESOLUTION) == tuple(info["space"]):
    LIMITS = evo.Limits(info["limits"]["sram"], info["limits"]["flash"])
else:
    LIMITS = evo.Limits(*(int(np.median([getattr(c, f) for c in costs])) for f in ("sram", "flash")))
print(f"limits: {LIMITS.sram / KB:.1f} kB SRAM, {LIMITS.flash / KB:.1f} kB Flash, no MAC limit")
for name, ok in (("SRAM", lambda c: c.sram <= LIMITS.sram), ("Flash", lambda c: c.flash <= LIMITS.flash),
                 ("both", lambda c: c.sram <= LIMITS.sram and c.flash <= LIMITS.flash)):
    print(f"random subnets within {name:5s}: {np.mean([ok(c) for c in costs]):.0%}")

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
# (more is usually more accurate, the bet of Lab 04), under the SRAM and Flash limits. Generation
# after generation the population computes more in the same memory, and no candidate it ever
# scores breaks a limit:

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


score, progress, macs_log = logged(lambda c: c.cost.macs / 1e6)
by_macs = evo.search(WIDTH, RESOLUTION, LIMITS, score, population=30, parents=6, mutations=12, crossovers=12,
                     generations=10, seed=0, progress=progress)
print("best MACs (M) per generation:", [round(v, 2) for v in by_macs.history])
print("mean MACs (M) of the new children:", [round(v, 2) for v in children_means(macs_log)])
print(f"{by_macs.evaluated} subnets scored, every one fits: "
      f"{all(evo.fits(evo.Candidate(c.cfg), LIMITS) for c in macs_log['candidates'])}")
print(f"best: {genome(by_macs.best.cfg)}\n  {by_macs.best.cost.sram / KB:.1f} kB SRAM, "
      f"{by_macs.best.cost.flash / KB:.1f} kB Flash, {by_macs.best.cost.macs / 1e6:.2f}M MACs")
_, yours = or_reference(evolution_search)(WIDTH, RESOLUTION, LIMITS, lambda c: c.cost.macs / 1e6,
                                          random.Random(0), 30, 6, 12, 12, 10)
print(f"your loop, the same seed: the same best MACs in every generation: {yours == by_macs.history}")

# %% [markdown]
# Now the real fitness: each candidate's supernet accuracy on `n_val` validation images after
# BatchNorm recalibration on `n_calib` training images (what `nas.fitness` computes). It is far
# more costly (a recalibration and a validation pass per candidate), so the search is small:
# population 16, 4 parents, 6 + 6 children, 5 generations. It is the very search the course's
# from-scratch reference ran (`mcunet-lite nas scratch`: the same supernet, images, limits and
# seed), so its winner is the network section 8 trains from scratch. Every scored candidate is
# kept for the next sections.

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
if info["winner"] and (WIDTH, RESOLUTION) == tuple(info["space"]):
    print("the from-scratch reference's search found the same winner:",
          genome(best.cfg) == genome(MBConvConfig.from_dict(info["winner"]["config"])))

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
ranked = sorted(scored, key=lambda c: -c.accuracy)
top, bottom = ranked[:6], ranked[-6:]
again = {name: [sn.accuracy(net, c.cfg, d.calib, held_x, held_y) for c in group]
         for name, group in (("best", top), ("worst", bottom))}
for c, acc in zip(top, again["best"]):
    print(f"fitness {c.accuracy:.3f} -> held-out {acc:.3f}   ({c.cost.macs / 1e6:.2f}M MACs)")
for name, group in (("best", top), ("worst", bottom)):
    print(f"the {len(group)} {name:5s} by fitness: mean fitness {np.mean([c.accuracy for c in group]):.3f}, "
          f"mean held-out accuracy {np.mean(again[name]):.3f}")
print(f"noise of one score ({len(val_y)} images, binomial standard error): "
      f"{np.sqrt(chance * (1 - chance) / len(val_y)):.3f}")

# %% [markdown]
# Read the numbers above. The mean of the new children rises generation after generation, as
# with MACs: mutations and crossovers of the best parents land among the better-scoring subnets.
# But the best score is the maximum of dozens of noisy scores, so on its own it flatters the
# winner (the winner's curse), and the held-out check says how much: on validation images the
# search never saw, the six best candidates score about what the six worst do. Under this budget
# the subnets that fit differ by less than the noise of one 500-image score, so the evolution
# picks among near-equals by luck. (Compare the two groups on the same images, not a fitness with
# a held-out score: the two image sets are not equally hard.) A larger validation set per score
# would cost more per candidate; the next section asks the other question: is a higher supernet
# score a better network once trained on its own?
#
# ## 8. The truth test: training from scratch
#
# Every score so far came from the supernet. What the search needs is that a subnet the supernet
# ranks higher is also better when trained on its own, which is how it will be deployed; OFA
# checks this, and MCUNet's search relies on it. The course's **from-scratch reference**
# (`assets.load("nas-scratch")`, made by `mcunet-lite nas scratch`) trained, with one recipe
# (the same images, epochs and learning rate) and from random weights:
# - 8 subnets **spanning the space**, with MACs evenly spaced from the cheapest to the costliest
#   of 1000 random ones;
# - under one **budget** (SRAM and Flash): the **winner** of this search on the shipped supernet
#   (`nas.search`, the evolution of section 7 with a larger population), **MobileNetV2 scaled**
#   (width multiplier x resolution) to the most MACs that fit the same budget (`nas.scaled_mbv2`,
#   MCUNet's baseline in its table 2), and **random subnets** of the space that fit it; three
#   seeds each.
#
# All of them are scored here on the same fresh validation images (another seed than anything
# trained or searched on).

# %%
reference = assets.entry("nas-scratch")
BUDGET = evo.Limits(info["limits"]["sram"], info["limits"]["flash"])
N_TRUTH = 2000
truth = {}  # resolution -> fresh validation images and labels


def truth_set(resolution):
    """The first N_TRUTH scenes of the validation stream `assets.EVAL_SEED`, at `resolution`."""
    if resolution not in truth:
        x, y = data.synthetic(N_TRUTH, resolution, "val", assets.EVAL_SEED, progress=False).arrays()
        truth[resolution] = (data.to_tensor(x), torch.as_tensor(y))
    return truth[resolution]


def top1(model, resolution):
    """Accuracy of a trained network on the fresh images (`train.evaluate`, as the manifest measured it)."""
    return train.evaluate(model, TensorDataset(*truth_set(resolution)))["accuracy"]


print(f"`{reference['command']}`\n  {len(runs)} networks, {reference['train_seconds'] / 3600:.1f} hours of one CPU "
      f"core; budget {BUDGET.sram / KB:.0f} kB SRAM, {BUDGET.flash / KB:.0f} kB Flash")

# %% [markdown]
# First the ranking. For each spanning subnet: the supernet's accuracy with the shared BatchNorm
# statistics, after recalibration (what the search reads), and the accuracy of the same subnet
# trained from scratch. Kendall's tau (`predictor.kendall_tau`, section 9 says more) compares
# the two rankings: 1 the same order, 0 unrelated.

# %%
same_space = (WIDTH, RESOLUTION) == tuple(info["space"])  # False with TRAIN_LIVE or another CHECKPOINT
span_res = info["space"][1]
x_truth, y_truth = truth_set(span_res)
span = [(cfg, model) for role, cfg, _, model in runs if role.startswith("spanning")]
scratch_acc = [top1(model, span_res) for _, model in span]
shared_acc, inherited_acc = [], []
for cfg, _ in span if same_space else []:
    net.load_state_dict(shared_stats)
    shared_acc.append(sn.accuracy(net, cfg, None, x_truth, y_truth))
    inherited_acc.append(sn.accuracy(net, cfg, d.calib, x_truth, y_truth))
net.load_state_dict(shared_stats)
span_macs = [ss.cost(cfg).macs / 1e6 for cfg, _ in span]
if same_space:
    tau = predictor.kendall_tau(inherited_acc, scratch_acc)
    tau_shared = predictor.kendall_tau(shared_acc, scratch_acc)
    print(f"{'MACs':>6s}  {'shared BN':>9s}  {'recalibrated':>12s}  {'from scratch':>12s}")
    for m, a, b, c in zip(span_macs, shared_acc, inherited_acc, scratch_acc):
        print(f"{m:5.1f}M  {a:9.3f}  {b:12.3f}  {c:12.3f}")
    null = np.sqrt(2 * (2 * len(span) + 5) / (9 * len(span) * (len(span) - 1)))
    print(f"Kendall tau, supernet (recalibrated) vs from scratch: {tau:.2f}; with the shared statistics: "
          f"{tau_shared:.2f} (unrelated rankings of {len(span)} subnets: 0 +- {null:.2f})")
    print(f"recalibration raised the supernet's accuracy of {sum(b > a for a, b in zip(shared_acc, inherited_acc))} "
          f"of {len(span)} subnets, by {np.mean(inherited_acc) - np.mean(shared_acc):+.3f} on average")
    m = reference["metrics"]
    print(f"the reference's own measurement ({m['n']} images): tau {m['kendall_tau']:.2f}")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(inherited_acc, scratch_acc, c=span_macs, cmap="viridis", s=40, label="recalibrated")
    ax.scatter(shared_acc, scratch_acc, facecolors="none", edgecolors="grey", s=40, label="shared BN statistics")
    for a, b, c in zip(shared_acc, inherited_acc, scratch_acc):
        ax.annotate("", (b, c), (a, c), arrowprops=dict(arrowstyle="->", color="grey", lw=0.8))
    ax.set_xlabel(f"supernet accuracy ({N_TRUTH} fresh images)")
    ax.set_ylabel("accuracy trained from scratch")
    ax.set_title(f"8 subnets spanning the space: tau {tau:.2f}", fontsize=10)
    fig.colorbar(ax.collections[0], label="MACs (M)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    plt.show()
else:
    print("this supernet has another space than the reference's subnets: its ranking cannot be checked here "
          "(set TRAIN_LIVE = False and CHECKPOINT = None)")

# %% [markdown]
# Now the budget. The searched winner, MobileNetV2 scaled to the same SRAM and Flash, and random
# subnets of the space that fit, each trained from scratch with three seeds:

# %%
groups = {}
for role, cfg, seed, model in runs:
    if not role.startswith("spanning"):
        groups.setdefault(role, []).append((cfg, top1(model, cfg.resolution)))
names = {"mbv2": "MobileNetV2 scaled", "random": "random subnets that fit", "winner": "searched winner"}
means = {}
print(f"{'network':24s} {'width':>5s} {'res':>4s} {'SRAM':>8s} {'Flash':>9s} {'MACs':>6s}  accuracy (seeds)")
for role in ("mbv2", "random", "winner"):
    cfgs, accs = [c for c, _ in groups[role]], [a for _, a in groups[role]]
    costs_r = [ss.cost(c) for c in cfgs]
    means[role] = float(np.mean(accs))
    print(f"{names[role]:24s} {cfgs[0].width:5g} {cfgs[0].resolution:4d} "
          f"{np.mean([c.sram for c in costs_r]) / KB:5.1f} kB {np.mean([c.flash for c in costs_r]) / KB:6.1f} kB "
          f"{np.mean([c.macs for c in costs_r]) / 1e6:5.1f}M  {means[role]:.3f} ({', '.join(f'{a:.3f}' for a in accs)})")
print(f"winner - MobileNetV2: {100 * (means['winner'] - means['mbv2']):+.1f} points; winner - random: "
      f"{100 * (means['winner'] - means['random']):+.1f} points (means of 3 seeds, {N_TRUTH} images)")
print(f"the reference's own measurement ({m['n']} images): winner {m['winner_top1']:.3f}, MobileNetV2 "
      f"{m['mbv2_top1']:.3f}, random {m['random_top1']:.3f}")
print(f"the winner: {genome(groups['winner'][0][0])}; its supernet accuracy in the search "
      f"{info['winner']['supernet_accuracy']:.3f}")

fig, ax = plt.subplots(figsize=(6, 3.2))
for i, role in enumerate(("mbv2", "random", "winner")):
    accs = [a for _, a in groups[role]]
    ax.bar(i, means[role], color=("tab:grey", "tab:blue", "tab:red")[i], alpha=0.6)
    ax.scatter([i] * len(accs), accs, color="k", s=12, zorder=3)
ax.set_xticks(range(3), [names[r] for r in ("mbv2", "random", "winner")])
lo = min(a for g in groups.values() for _, a in g)
ax.set_ylim(lo - 0.05, None)
ax.set_ylabel("accuracy trained from scratch")
ax.set_title(f"Same budget ({BUDGET.sram / KB:.0f} kB SRAM, {BUDGET.flash / KB:.0f} kB Flash), "
             "three seeds each", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the two results together.
#
# **Across the space** the supernet's ranking holds in the main. Its recalibrated accuracies order
# the eight spanning subnets with a tau of about 0.5 against training from scratch, well above
# what unrelated rankings give. With the shared statistics its scores are lower, one of them
# near the majority rate, and rank no better; recalibration raises every one of them. The two scales differ: the inherited
# accuracies sit within about two points of each other, while each from-scratch accuracy is one
# training run, whose seed alone moves it by a few points (the three seeds of each network above
# show how much), so a tau near 1 is not to be expected from eight single runs.
#
# **Under the budget** the searched winner beats MobileNetV2 scaled to the same 64 kB SRAM and
# 256 kB Flash by more than 15 points. MobileNetV2's 1280-channel head costs Flash that the search
# space spends on the body, so to fit it must shrink to width 0.25 at 64 px, a third of the
# winner's MACs, and with the same training it learns far less: MCUNet's table 2 in miniature.
# Against random subnets of the same space that fit the budget, the winner is no better: within
# one good space under one budget the subnets' true differences are smaller than the noise of a
# 500-image fitness (section 7's held-out check) and of one training run. What bought the
# accuracy here is the space and the budget (Lab 04's stage 1): the supernet tells a large subnet
# from a small one, not two equals apart. MCUNet's search separates finer differences with a
# supernet trained for GPU-days on ImageNet and scores on thousands of validation images, and NAS
# papers report random search in the same space as the baseline to beat for exactly this reason.
#
# ## 9. An accuracy predictor (3 points)
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
# (scored by the supernet too). Last, the truth of section 8: the same predictor's ranking of the
# 8 spanning subnets against their from-scratch accuracies (most of them outside the limits, so
# far from the pairs it was fitted on).

# %%
mac_pairs = [c.macs / 1e6 for c in costs]
mac_guess = or_reference(accuracy_predictor)(population[:150], mac_pairs[:150], population[150:], 1.0)
tau_macs = predictor.kendall_tau(mac_guess, mac_pairs[150:])

fresh_rng, fresh = random.Random(7), []
while len(fresh) < 16:
    c = evo.Candidate(ss.sample(fresh_rng, WIDTH, RESOLUTION))
    if evo.fits(c, LIMITS):
        fresh.append(c.cfg)
fresh_val = [sn.accuracy(net, cfg, d.calib, val_x, val_y) for cfg in fresh]
fit = ([c.cfg for c in scored], [c.accuracy for c in scored])
acc_guess = or_reference(accuracy_predictor)(*fit, fresh, 1.0)
tau_acc = predictor.kendall_tau(acc_guess, fresh_val)
print(f"MACs: predicted for 50 unseen subnets, Kendall tau {tau_macs:.2f}")
print(f"supernet accuracy: fitted on {len(scored)} searched subnets, tau {tau_acc:.2f} on {len(fresh)} fresh ones "
      f"(unrelated: 0 +- {np.sqrt(2 * (2 * len(fresh) + 5) / (9 * len(fresh) * (len(fresh) - 1))):.2f})")
if same_space:
    span_guess = or_reference(accuracy_predictor)(*fit, [cfg for cfg, _ in span], 1.0)
    print(f"the 8 spanning subnets of section 8: tau {predictor.kendall_tau(span_guess, inherited_acc):.2f} against "
          f"the supernet, {predictor.kendall_tau(span_guess, scratch_acc):.2f} against training from scratch")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
axes[0].scatter(mac_pairs[150:], mac_guess, s=14)
axes[0].set_xlabel("MACs (M), measured")
axes[0].set_ylabel("predicted")
axes[0].set_title(f"MACs of 50 unseen subnets: tau {tau_macs:.2f}", fontsize=10)
axes[1].scatter(fresh_val, acc_guess, s=14)
axes[1].set_xlabel(f"supernet accuracy ({len(val_y)} validation images)")
axes[1].set_ylabel("predicted")
axes[1].set_title(f"{len(fresh)} fresh subnets: tau {tau_acc:.2f}", fontsize=10)
fig.suptitle("The accuracy predictor against what it predicts")
fig.tight_layout()
plt.show()

# %% [markdown]
# On MACs, which the encoding nearly determines, the linear predictor ranks subnets it never saw
# almost as the measurement does (with the default settings, a tau close to 0.9): that is what a
# predictor can do when its pairs carry a ranking. On the supernet's accuracies it cannot: fitted
# on the searched subnets, all within one budget and scored within about the noise of one score
# of each other (section 7), it ranks fresh subnets no better than unrelated scorings would, and
# the spanning subnets of section 8 hardly better. There is no ranking in its pairs to learn.
# OFA's predictor is worth its pairs because they span the space and come from a supernet whose
# scores separate them; try fitting yours on scores of subnets spread over the space (as the
# spanning ones are) and compare.
#
# ## 10. The Pareto front
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
    if limit:
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
ax.fill_between([0, max(c.macs for c in costs) / 1e6 * 1.05], 0, LIMITS.sram / KB, color="tab:green", alpha=0.2,
                label="within the SRAM limit")
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
# and Flash as well as SRAM. Read the accuracy axis with sections 7 and 8 in mind: the scored
# subnets all fit one budget, and their scores differ by about the noise of one score, so these
# fronts show how a front is built more than which subnets belong on it.
#
# ## 11. MCUNetV2: search the schedule too
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
    evo.search(WIDTH, bigger, LIMITS, lambda c: c.cost.macs, **kw)
except UserError as e:
    print(f"layer by layer at {bigger} px:", str(e).split(":")[0])
joint = evo.search(WIDTH, bigger, LIMITS, lambda c: c.cost.macs, joint_patch=True, **kw)
split, grid = joint.best.patch
print(f"joint search at {bigger} px: best {joint.best.cost.macs / 1e6:.2f}M MACs in "
      f"{joint.best.cost.sram / KB:.1f} kB SRAM, patch stage up to block {split}, {grid}x{grid} patches")
plain = evo.search(WIDTH, RESOLUTION, LIMITS, lambda c: c.cost.macs, **kw)
print(f"layer by layer at {RESOLUTION} px: best {plain.best.cost.macs / 1e6:.2f}M MACs in "
      f"{plain.best.cost.sram / KB:.1f} kB SRAM")

# %% [markdown]
# No subnet fits layer by layer at the larger resolution; with the patch plan in the genome the
# search finds subnets that do, and more computation on a larger image. This is the step that
# lets MCUNetV2 run at higher resolution on the same microcontroller.
#
# ## What next
#
# - **Train the supernet yourself.** Section 4 prints the command that made the shipped supernet;
#   `mcunet-lite assets verify --retrain supernet` runs it again (hours of one CPU core; it runs
#   unchanged under `torchrun`, over several processes or machines, and resumes where it stopped).
#   Any file it writes can be the lab's `CHECKPOINT`.
# - **Your own truth test.** `mcunet-lite nas scratch --width 0.35 --resolution 80 --sram 96
#   --flash 384 --out mine.pt` trains the spanning subnets, MobileNetV2, random subnets and the
#   searched winner for another budget (an hour or more of one core; `--resume` continues), and
#   `mcunet-lite assets verify nas-scratch` measures the shipped reference again on fresh images.
# - **The search from the command line.** `mcunet-lite nas search --sram 64 --flash 256` searches
#   the shipped supernet with MCUNet's full defaults (population 100, 30 generations);
#   `--train-supernet` chooses the space for other budgets (Lab 04) and trains its supernet first.
# - **After the search.** MCUNet fine-tunes the winner: `sn.extract(net, best.cfg)` is an
#   ordinary PyTorch network to train further, then quantize (Lab 01), schedule (Lab 02) and
#   deploy (Lab 06).
