# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. Results: what the model gets right and wrong
#
# Notebook 06 trained the book's MNIST model (on a fresh clone: loaded the
# shipped result of that training). Here we read the results the way one
# should read any classifier:
#
# - the accuracy curve over the epochs,
# - confusion matrices on the training and validation sets,
# - the accuracy of each class,
# - the digits the model gets wrong, and
# - at the very end, once, the accuracy on the test set.
#
# Every accuracy comes with its 95 % interval: the range of true accuracies
# that the count of right answers is consistent with. On the validation and
# test sets it is a few points wide, which matters when two accuracies are
# compared.
#
# The main figures are also saved under `images/`, for the README:
# `accuracy.png`, `cm_train.png`, `cm_val.png` and `misclassified.png`.

# %%
# %matplotlib inline
import torch

from vit_tutorial import default_device, evaluate, quick_mode, set_seed
from vit_tutorial.book import IMAGES, digits, load, training_set
from vit_tutorial.evaluation import count_summary, wilson_interval
from vit_tutorial.plots import plot_accuracy, plot_confusion, plot_misclassified, plot_per_class_accuracy

set_seed(0)
device = default_device()
QUICK = quick_mode()

# %% [markdown]
# `load` returns the same model as notebook 06 (the shipped
# checkpoint on a fresh clone; a model trained here with
# `VIT_TUTORIAL_RETRAIN=1` or in quick mode) and its training history;
# `digits` the data splits.

# %%
# NBVAL_IGNORE_OUTPUT
splits = digits()
MODEL = f"{splits.dataset}/vit"
model, history = load(MODEL, splits)
train = training_set(splits)
print(splits.source)
print(f"{model.num_parameters():,} parameters, trained for {len(history)} epochs on {len(train):,} images")

# %%
assert not model.training and model.config.num_classes == 10
print("model loaded in evaluation mode")

# %% [markdown]
# ## Accuracy over the epochs
#
# The training accuracy is measured on augmented images while the model is
# still changing within each epoch; the validation accuracy on plain images at
# the end of each epoch. That is why the validation curve can sit above the
# training curve.

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_accuracy(history, title="ViT on MNIST: accuracy per epoch")
fig.savefig(IMAGES / "accuracy.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# ## Confusion matrices
#
# Row *i*, column *j* counts the images of digit *i* that the model called
# *j*. A perfect model has numbers on the diagonal only; every number off the
# diagonal is a kind of mistake, and the pattern of mistakes says more than
# the accuracy alone.
#
# `evaluate` runs the model over a whole set and collects the predictions,
# probabilities, the confusion matrix and the per-class accuracy.

# %%
# NBVAL_IGNORE_OUTPUT
ev_train = evaluate(model, train, device=device)
ev_val = evaluate(model, splits.val, device=device)
print(ev_train.summary("training accuracy  "), "(as stored, no augmentation)")
print(ev_val.summary("validation accuracy"))

# %%
for ev, data in ((ev_train, train), (ev_val, splits.val)):
    assert ev.confusion.shape == (10, 10) and ev.confusion.sum() == len(data)
    assert abs(ev.confusion.trace().item() / len(data) - ev.accuracy) < 1e-6
    assert ev.interval[0] <= ev.accuracy <= ev.interval[1] and ev.interval[0] > 0.10  # above chance
    assert ev.accuracy > 0.15  # 1.5 times chance: even quick mode's 2 epochs on 1,000 digits clear it
print("each confusion matrix counts every image once; its diagonal gives the accuracy, above chance")

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_confusion(ev_train, title=f"Training set, as stored\n{ev_train.summary('accuracy')}")
fig.savefig(IMAGES / "cm_train.png", dpi=120, bbox_inches="tight")
fig

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_confusion(ev_val, title=f"Validation set\n{ev_val.summary('accuracy')}")
fig.savefig(IMAGES / "cm_val.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# With so few mistakes the diagonal takes the whole colour scale and the
# mistakes are pale cells that are hard to see. Setting the diagonal to zero
# gives the colour scale to the mistakes; the cell also lists the largest
# off-diagonal cells of the validation matrix.

# %%
# NBVAL_IGNORE_OUTPUT
mistakes = ev_val.confusion.clone()
mistakes.fill_diagonal_(0)  # keep only the off-diagonal cells: (10, 10)
cells = sorted(((int(mistakes[i, j]), i, j) for i in range(10) for j in range(10) if mistakes[i, j]),
               key=lambda c: (-c[0], c[1], c[2]))
print(f"{int(mistakes.sum())} validation mistakes, spread over {len(cells)} of the 90 off-diagonal cells, "
      f"largest first:")
for n, i, j in cells:
    print(f"  {n} x  {ev_val.classes[i]} read as {ev_val.classes[j]}")
fig = plot_confusion(mistakes, ev_val.classes, title="Validation set: the mistakes only (diagonal set to 0)")
fig

# %%
assert int(mistakes.sum()) == sum(n for n, _, _ in cells) == len(splits.val) - ev_val.correct
print("the off-diagonal cells hold every mistake once")

# %% [markdown]
# The 8 mistakes fall into 7 different cells. Only one cell holds more than
# one image: two 8s read as 3. Each of the other six holds a single digit:
# 1 read as 7, 3 as 5, 3 as 7, 4 as 9, 8 as 4 and 8 as 9. Half of the
# mistakes are 8s, but with one or two images per cell there is no pattern
# to read here, only single cases; a confusion that the model makes
# systematically would need many more validation digits to show.

# %% [markdown]
# ## Accuracy per class
#
# Averages hide the weak classes. The bars show, for each digit, the share of
# its validation images the model got right, with the count on each bar. The
# axis does not start at zero: every bar is close to 100 %, and a difference of
# one digit out of 50 is two points. The cell prints each class's interval too.

# %%
# NBVAL_IGNORE_OUTPUT
right, total = ev_val.confusion.diag(), ev_val.confusion.sum(1)
fig = plot_per_class_accuracy(ev_val, title="Validation accuracy per digit (right / images of the digit)")
ax = fig.axes[0]
ax.bar_label(ax.containers[0], labels=[f"{r}/{n}" for r, n in zip(right.tolist(), total.tolist())],
             padding=2, fontsize=8)
bottom = ax.get_ylim()[0]
ax.set_ylim(bottom, 102)
ax.set_yticks([t for t in ax.get_yticks() if bottom <= t <= 100])
ax.set_ylabel(f"accuracy (%), axis from {bottom:.0f} %")
for c, r, n in zip(ev_val.classes, right.tolist(), total.tolist()):
    print(f"digit {c}: {r}/{n}, {count_summary(r, n, short=True)}")
worst = ev_val.per_class_accuracy.argmin().item()
print(f"weakest digit: {ev_val.classes[worst]} ({right[worst]}/{total[worst]})")
fig

# %%
torch.testing.assert_close(right.float() / total.float(), ev_val.per_class_accuracy)
assert right.sum() == ev_val.correct
print("the per-class counts add up to the validation accuracy")

# %% [markdown]
# The weakest digit is 8, with 46 of 50 right; six digits have all 50 right.
# Overlapping intervals are not a test of a difference. The images of two
# classes are different images, so McNemar's test does not apply; Fisher's
# exact test on the two counts does:

# %%
# NBVAL_IGNORE_OUTPUT
from scipy.stats import fisher_exact

best = int(right.argmax())
table = [[int(right[worst]), int(total[worst] - right[worst])], [int(right[best]), int(total[best] - right[best])]]
_, p_fisher = fisher_exact(table)
print(f"digit {ev_val.classes[worst]} {table[0][0]}/{total[worst]} against digit {ev_val.classes[best]} "
      f"{table[1][0]}/{total[best]}: Fisher's exact p = {p_fisher:.2f}")
assert 0 < p_fisher <= 1

# %% [markdown]
# A p-value of that size is weak evidence that this model finds its weakest
# digit harder, not none: with 50 images per class, four mistakes are too
# few to tell a hard digit from bad luck.

# %% [markdown]
# ## The mistakes
#
# The validation digits the model got wrong, most confident mistake first,
# titled *true → predicted (probability of the prediction)*.

# %%
# NBVAL_IGNORE_OUTPUT
wrong = ev_val.misclassified
print(f"{len(wrong)} of {len(splits.val)} validation digits misclassified:")
print(", ".join(f"{ev_val.classes[ev_val.labels[i]]} -> {ev_val.classes[ev_val.predictions[i]]} "
                f"({ev_val.probabilities[i, ev_val.predictions[i]]:.0%})" for i in wrong.tolist()))
fig = plot_misclassified(splits.val, ev_val, n=24)
fig.savefig(IMAGES / "misclassified.png", dpi=120, bbox_inches="tight")
fig

# %%
assert (ev_val.predictions[wrong] != ev_val.labels[wrong]).all()
assert len(wrong) == (ev_val.predictions != ev_val.labels).sum()
print("the gallery shows only misclassified digits")

# %% [markdown]
# Some of these would make a person hesitate too: the 4 read as 9 has its top
# closed, and the 1 read as 7 has a small mark near its top. Four of the
# eight are 8s, most of them thin, with small or open loops. The model was
# most sure of its mistake on the 4 (92 %) and least sure on the thin,
# slanted 8 read as 3 (33 %).

# %% [markdown]
# ## The test set, once
#
# Everything above used the training and validation sets, and so did the
# book up to here: notebooks 01-05 draw their demo digits from the validation
# split, and the recipe's number of epochs was chosen by cross-validation on
# the training and validation digits (notebook 06). Nothing about this model
# was chosen with the test set, so its accuracy is an honest estimate of how
# the model does on digits it has never seen. We report it once and choose
# nothing with it. (Notebook 08 looks inside this same model with
# validation digits only; it changes nothing in it. Notebook 12 later scores
# two other models on the same test digits, for another question.)
#
# On the offline sample, remember, the test set is 500 MNIST *training*
# digits kept apart (notebook 06), not the official MNIST test set.

# %%
# NBVAL_IGNORE_OUTPUT
ev_test = evaluate(model, splits.test, device=device)
print(f"{len(splits.test):,} test images of {splits.train.name} "
      f"({'the official MNIST test set' if splits.dataset == 'mnist' else 'the offline 5,000-digit sample'}; "
      f"{'quick mode' if QUICK else 'full recipe'})")
print(ev_test.summary("test accuracy      "))
print(ev_val.summary("validation accuracy"))
print(f"validation: {ev_val.correct} right; test: {ev_test.correct} right")

# %%
assert len(ev_test.labels) == len(splits.test) and ev_test.interval[0] > 0.10
assert ev_test.interval[0] <= ev_test.accuracy <= ev_test.interval[1] and ev_test.accuracy > 0.15
print("test accuracy above chance (10 %), interval included")

# %% [markdown]
# The test accuracy, 98.80 % (95 % interval 97.4-99.4 %), and the validation
# accuracy, 98.40 % (96.9-99.2 %), are two digits apart out of 500 (494 right
# against 492), far inside both intervals: a tie. The two are different
# images, so there is no pairing to exploit (a paired test such as McNemar's
# needs both models on the same images); comparing the two intervals is the
# right tool here. Both say the same thing: on digits it has never seen, this
# model gets about 98 or 99 in 100 right, and 500 images cannot pin that down
# more finely than the interval above.

# %% [markdown]
# **Next**, notebook 08 opens the model up: where does the class token look
# when it reads a digit, layer by layer and head by head?

# %% [markdown]
# ## Exercises
#
# 1. The textbook interval p ± 1.96 · √(p(1 − p)/n) has width zero for a
#    digit with all 50 of 50 right, as if 100 % were certain. Compute the
#    Wilson interval by hand, with the formula below, for 50 of 50 and for
#    47 of 50, and check it against `wilson_interval`:
#
#    $$\frac{p + \frac{z^2}{2n} \pm z\sqrt{\frac{p(1-p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}},
#    \qquad z = 1.96.$$
#
# 2. A model gets 98 % of 500 test digits right (490). How many test digits
#    at the same accuracy would halve the width of its 95 % interval?
# 3. Rebuild the validation confusion matrix from `ev_val.labels` and
#    `ev_val.predictions` with a plain loop and check it against
#    `ev_val.confusion` and `confusion_matrix`. Then read each digit's
#    *recall* (right / images of the digit) from its row and its
#    *precision* (right / images predicted as the digit) from its column;
#    which of the two is `per_class_accuracy`?
# 4. Suppose a model is right on 98 % of every digit alike, and each class
#    has 50 validation images. How likely is it that the weakest of the ten
#    classes has 47 or fewer right? What does that say about calling the
#    weakest digit of a run "harder"?

# %% [markdown]
# **Solution 1.** Near 100 % the textbook interval collapses, because
# p(1 − p) goes to zero; the Wilson interval keeps the extra z²/(4n²)
# under the square root and so keeps a width. For 50 of 50 it reaches down
# to about 93 %.

# %%
import math

from vit_tutorial.evaluation import confusion_matrix


def wilson_by_hand(k, n, z=1.96):
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


for k, n in ((50, 50), (47, 50)):
    lo, hi = wilson_by_hand(k, n)
    wald = 1.96 * math.sqrt(k / n * (1 - k / n) / n)
    assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip((lo, hi), wilson_interval(k, n)))
    print(f"{k}/{n}: Wilson {100 * lo:.1f}-{100 * min(hi, 1):.1f} %, textbook {100 * (k / n - wald):.1f}-"
          f"{100 * min(k / n + wald, 1):.1f} %")

# %% [markdown]
# **Solution 2.** The width shrinks roughly like 1/√n, so halving it takes
# about four times as many digits. Searching in steps of 100 digits, with the
# same 98 % right:

# %%
def width(n, p=0.98):
    lo, hi = wilson_interval(round(p * n), n)
    return hi - lo


target = width(500) / 2
needed = next(n for n in range(600, 10_000, 100) if width(n) <= target)
assert 0.9 * 4 * 500 <= needed <= 1.1 * 4 * 500
print(f"width at 500 digits: {100 * width(500):.2f} points; halved ({100 * width(needed):.2f}) "
      f"at {needed:,} digits, {needed / 500:.1f} times as many")

# %% [markdown]
# **Solution 3.** Row i holds the images of digit i, so its diagonal entry
# over the row sum is the recall, which is what `per_class_accuracy`
# reports. The column sum counts the images *predicted* as i, so the
# diagonal over the column sum is the precision.

# %%
by_loop = torch.zeros(10, 10, dtype=torch.long)
for true, predicted in zip(ev_val.labels.tolist(), ev_val.predictions.tolist()):
    by_loop[true, predicted] += 1
assert torch.equal(by_loop, ev_val.confusion)
assert torch.equal(by_loop, confusion_matrix(ev_val.labels, ev_val.predictions, 10))
recall = by_loop.diag() / by_loop.sum(1)
precision = by_loop.diag() / by_loop.sum(0).clamp_min(1)  # a digit never predicted has no precision
torch.testing.assert_close(recall.float(), ev_val.per_class_accuracy)
assert ((precision >= 0) & (precision <= 1)).all()
print("the loop gives the same matrix; per_class_accuracy is the recall, read along the rows")

# %% [markdown]
# **Solution 4.** One class has at most 47 right with probability
# P(X ≤ 47) for X ~ Binomial(50, 0.98); the weakest of ten independent
# classes does unless all ten have 48 or more, so the chance is
# 1 − (1 − P(X ≤ 47))¹⁰. It comes out above one half: a weakest digit three
# or more below 50 is what a model with no weak digit at all usually shows.
# A simulation with a fixed generator agrees.

# %%
p, n, classes = 0.98, 50, 10
one_class = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(48))  # P(X <= 47)
weakest = 1 - (1 - one_class) ** classes
draws = torch.rand(20_000, classes, n, generator=torch.Generator().manual_seed(0)) < p  # right or wrong
simulated = (draws.sum(-1).amin(-1) <= 47).float().mean().item()
assert weakest > 0.5 and abs(simulated - weakest) < 0.02
print(f"P(one class <= 47 of 50) = {one_class:.3f}; P(weakest of {classes} <= 47) = {weakest:.3f} "
      f"(simulated {simulated:.3f})")
