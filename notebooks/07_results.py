# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Results: what the model gets right and wrong
#
# Notebook 06 trained the book's MNIST model and saved it. Here we read the
# results the way one should read any classifier:
#
# - the accuracy curve over the epochs,
# - confusion matrices on the training and validation sets,
# - the accuracy of each class,
# - the digits the model gets wrong, and
# - at the very end, once, the accuracy on the test set.
#
# The three figures the project started from (`accuracy.png`,
# `cm_train.png`, `cm_val.png`) are written to `images/` here.

# %%
# %matplotlib inline
from vit_tutorial import default_device, evaluate, quick_mode, set_seed
from vit_tutorial.book import IMAGES, train_or_load, training_set
from vit_tutorial.plots import plot_accuracy, plot_confusion, plot_misclassified, plot_per_class_accuracy

set_seed(0)
device = default_device()
QUICK = quick_mode()

# %% [markdown]
# `train_or_load` returns the model notebook 06 saved (or trains it, if you
# open this notebook first), its training history and the data splits.

# %%
# NBVAL_IGNORE_OUTPUT
model, history, splits = train_or_load("mnist")
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
# the accuracy alone (4 read as 9, 7 read as 2 are the classic ones).
#
# `evaluate` runs the model over a whole set and collects the predictions,
# probabilities, the confusion matrix and the per-class accuracy.

# %%
# NBVAL_IGNORE_OUTPUT
ev_train = evaluate(model, train, device=device)
ev_val = evaluate(model, splits.val, device=device)
print(f"training accuracy   {ev_train.accuracy:.2%} ({len(train):,} images, no augmentation)")
print(f"validation accuracy {ev_val.accuracy:.2%} ({len(splits.val):,} images)")

# %%
for ev, data in ((ev_train, train), (ev_val, splits.val)):
    assert ev.confusion.shape == (10, 10) and ev.confusion.sum() == len(data)
    assert abs(ev.confusion.trace().item() / len(data) - ev.accuracy) < 1e-6
print("each confusion matrix counts every image once; its diagonal gives the accuracy")

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_confusion(ev_train, title=f"Training set: accuracy {ev_train.accuracy:.2%}")
fig.savefig(IMAGES / "cm_train.png", dpi=120, bbox_inches="tight")
fig

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_confusion(ev_val, title=f"Validation set: accuracy {ev_val.accuracy:.2%}")
fig.savefig(IMAGES / "cm_val.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# ## Accuracy per class
#
# Averages hide the weak classes. The bars show, for each digit, the share of
# its validation images the model got right.

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_per_class_accuracy(ev_val, title="Validation accuracy per digit")
worst = ev_val.per_class_accuracy.argmin().item()
print(f"weakest digit: {ev_val.classes[worst]} ({ev_val.per_class_accuracy[worst]:.1%})")
fig

# %% [markdown]
# ## The mistakes
#
# The validation digits the model got wrong, most confident mistake first,
# titled *true → predicted (probability of the prediction)*. Some are digits a
# person would also hesitate over; others show what the model has not learned.

# %%
# NBVAL_IGNORE_OUTPUT
wrong = ev_val.misclassified
print(f"{len(wrong)} of {len(splits.val)} validation digits misclassified")
fig = plot_misclassified(splits.val, ev_val, n=24)
fig.savefig(IMAGES / "misclassified.png", dpi=120, bbox_inches="tight")
fig

# %%
assert (ev_val.predictions[wrong] != ev_val.labels[wrong]).all()
assert len(wrong) == (ev_val.predictions != ev_val.labels).sum()
print("the gallery shows only misclassified digits")

# %% [markdown]
# ## The test set, once
#
# Everything above used the training and validation sets. The test set was
# never looked at while building or training the model, so its accuracy is an
# honest estimate of how the model does on digits it has never seen. We report
# it once and choose nothing with it.

# %%
# NBVAL_IGNORE_OUTPUT
ev_test = evaluate(model, splits.test, device=device)
print(f"test accuracy: {ev_test.accuracy:.2%} on {len(splits.test):,} images of {splits.train.name} "
      f"({'full MNIST' if splits.full else 'the offline 5,000-digit sample'}; "
      f"{'quick mode' if QUICK else 'full recipe'})")

# %% [markdown]
# **Next**, notebook 08 opens the model up: where does the class token look
# when it reads a digit, layer by layer and head by head?
