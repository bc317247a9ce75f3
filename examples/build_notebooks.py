"""Write the example notebooks from the cells listed here, with no outputs.

    python examples/build_notebooks.py           # (re)write examples/*.ipynb
    python examples/build_notebooks.py --check   # exit 1 if a notebook differs from this file

The notebooks are generated so that they stay reviewable as plain Python and never carry
outputs into git. ``tests/test_notebooks.py`` checks they match this file and runs them top to
bottom on the CPU, so they cannot go stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

Cells = list[tuple[str, str]]
"""A notebook as ``(kind, source)`` pairs, kind ``"md"`` or ``"code"``."""

TUTORIAL: Cells = [
    ("md", """\
# What a convolutional layer does to a photo

This notebook follows one photo through the first layer of a convolutional neural network
(CNN), one step at a time, with convlens doing the work and drawing the
pictures:

1. load the photo as numbers between 0 and 1 (normalization),
2. make it gray,
3. pick a few small kernels (edge detectors),
4. slide each kernel over the image (the convolution),
5. keep only the positive responses (ReLU),
6. shrink the maps with max pooling,
7. redo one output number by hand,
8. work out the size of every map with the formula (I - F + 2P)/S + 1,
9. train a small CNN on handwritten digits,
10. look at the kernels it learned by itself, and use them on the photo.

Everything runs on a CPU in well under a minute. Library functions return figures and objects; the
last line of a cell is what gets drawn."""),
    ("code", """\
%matplotlib inline
import numpy as np
import torch
from PIL import Image

import convlens

torch.manual_seed(0)
print("convlens", convlens.__version__, "| torch", torch.__version__)"""),
    ("md", """\
## 1. A photo is a grid of numbers

convlens ships three free sample photos. `load_image` reads a file and returns a PyTorch
tensor of shape (channels, height, width). Here we ask for all three colour channels."""),
    ("code", """\
path = convlens.sample_path("chelsea")
rgb = convlens.load_image(path, mode="rgb")
print("shape (C, H, W):", tuple(rgb.shape), "| dtype:", rgb.dtype)
print("smallest and largest value:", float(rgb.min()), float(rgb.max()))
convlens.plot_image(rgb, "chelsea, in colour")"""),
    ("md", """\
The file itself stores whole numbers from 0 (dark) to 255 (bright) for each of red, green and
blue. `load_image` divides them by 255, so every value lies between 0 and 1. Networks train
much better on small numbers of similar size than on raw 0-255 values. This is the
*normalization* step. Let's check it on one pixel:"""),
    ("code", """\
raw = np.asarray(Image.open(path))          # (H, W, 3) whole numbers, straight from the file
row, col = 120, 200
print("in the file (R, G, B):   ", raw[row, col].tolist())
print("loaded, times 255:       ", [round(float(v) * 255, 3) for v in rgb[:, row, col]])"""),
    ("md", """\
## 2. From colour to gray

The layer we build works on one channel, so the photo becomes gray first. The standard
recipe (ITU-R BT.601) weighs green most, because our eyes are most sensitive to it:

gray = 0.299 R + 0.587 G + 0.114 B

A classic slip is to read an image as BGR (OpenCV's order) and then apply these weights as if
it were RGB, swapping the red and blue weights. convlens always works in RGB."""),
    ("code", """\
gray = convlens.to_gray(rgb)                 # the same as load_image(path) with mode="gray"
r, g, b = (float(v) for v in rgb[:, row, col])
by_hand = 0.299 * r + 0.587 * g + 0.114 * b
print(f"by hand: {by_hand:.6f}   convlens: {float(gray[0, row, col]):.6f}")
print("gray shape:", tuple(gray.shape))
convlens.plot_image(gray, "chelsea, gray")"""),
    ("md", """\
## 3. Kernels: small grids of weights

A kernel (or filter) is a small grid of numbers, here 3x3. Laid over a 3x3 patch of the image,
each weight multiplies the pixel under it and the products are added up. Where the weights
are negative on one side and positive on the other, the sum is large only where the brightness
changes: the kernel finds edges.

We use three classic kernels: horizontal Sobel, the Laplacian and vertical Sobel.
convlens knows these and more by name:"""),
    ("code", """\
for name in convlens.list_kernels():
    print(f"{name:14s} {convlens.get_kernel(name).description}")"""),
    ("code", """\
kernels = convlens.parse_kernels(["sobel-h", "laplacian", "sobel-v"])
names = [k.name for k in kernels]
convlens.plot_kernels(convlens.kernel_bank(kernels, in_channels=1), names)"""),
    ("md", """\
Red cells are positive weights, blue ones negative. Each kernel's weights add up to 0, so on
a flat, evenly lit area the products cancel and the kernel answers 0.

## 4. The convolution layer

`LayerConfig` holds the layer's settings: how far the kernel moves each step (`stride`), how
many cells of padding are added around the image, the activation and the pooling. Here:
stride 1, no padding, ReLU, then 2x2 max pooling (also the defaults).
`compute_stages` runs the image through PyTorch's `nn.Conv2d` with our kernels as its fixed
weights and keeps the output of every stage. The stages object draws itself: one row per
kernel."""),
    ("code", """\
config = convlens.LayerConfig(stride=1, padding=0, activation="relu", pool=2)
stages = convlens.compute_stages(gray, kernels, config)
stages"""),
    ("md", """\
Now each stage on its own, larger. The conv maps hold signed numbers: red where the kernel's
positive side sits on the brighter pixels, blue where it is the other way round, white where
nothing changes. Horizontal Sobel lights up along horizontal edges (the eyes' upper lids, the
whiskers), vertical Sobel along vertical ones."""),
    ("code", """\
convlens.plot_maps(stages.conv, names, "conv: each kernel slid over the photo", signed=True)"""),
    ("md", """\
Strictly speaking PyTorch computes *cross-correlation*: it lays the kernel on the image as it
is. The convolution of mathematics first turns the kernel round by 180 degrees. For learned
kernels this makes no difference (the network simply learns the turned kernel). For Sobel it
flips the sign of the answer; the symmetric Laplacian stays the same.

## 5. ReLU: keep the positive answers

The activation function is applied to every value of the conv maps. ReLU keeps positive values
and turns every negative one into 0. Half or more of each map becomes exactly 0: only one
direction of each edge survives."""),
    ("code", """\
zeroed = (stages.activated == 0).float().mean(dim=(1, 2))
for name, share in zip(names, zeroed):
    print(f"{name:10s} {float(share):.0%} of the values are 0 after ReLU")
convlens.plot_maps(stages.activated, names, "activated: ReLU of the conv maps")"""),
    ("md", """\
## 6. Max pooling: keep the strongest answer of each 2x2 window

Pooling cuts the map into 2x2 windows (stride 2, so they do not overlap) and keeps only the
largest value of each. The map shrinks to a quarter of its pixels, yet the edges remain: a
strong response anywhere in a window survives."""),
    ("code", """\
print("activated:", tuple(stages.activated.shape), "-> pooled:", tuple(stages.pooled.shape))
convlens.plot_maps(stages.pooled, names, "pooled: 2x2 max pooling, stride 2")"""),
    ("md", """\
Which pixel wins each window? The green boxes mark the winners in a zoomed corner of each map;
the grey numbers are thrown away."""),
    ("code", """\
from convlens.plot.explain import plot_winners

plot_winners(stages)"""),
    ("md", """\
## 7. One output number, by hand

Every number in a conv map is a sum of products. A classic worked example: the kernel

    1 0 1
    1 1 0
    0 0 0

over the 3x3 patch of pixel values

     88 126 145
     86 125 142
     85 124 141

First plainly with NumPy: multiply cell by cell, then add everything up."""),
    ("code", """\
patch = np.array([[88, 126, 145], [86, 125, 142], [85, 124, 141]], dtype=np.float64)
kernel = convlens.parse_kernel("1 0 1; 1 1 0; 0 0 0")
products = patch * kernel.as_2d()
print(products)
print("sum:", products.sum())"""),
    ("md", """\
`convlens.explain` does the same bookkeeping for any pixel of any layer, with padding, stride
and dilation taken into account. It works on normalized values (0 to 1) and reports the sum in
0-255 units too, so the 444 appears again:"""),
    ("code", """\
from convlens.explain import explain_pixel
from convlens.plot.explain import plot_explanation

image = torch.from_numpy(patch / 255).float()[None]            # (1, 3, 3), values in [0, 1]
weights = convlens.kernel_bank([kernel], in_channels=1)          # (1, 1, 3, 3)
worked = explain_pixel(image, weights, convlens.LayerConfig(pool=None), 0, 0, 0,
                       kernel_name="worked example")
print(" = ".join(worked.sum_lines()))
print("as a normalized value:", round(worked.value, 5), "=", round(444 / 255, 5))
plot_explanation(worked)"""),
    ("md", """\
The same works on the photo. Let's find the strongest answer of the horizontal Sobel kernel,
explain it, and check it is exactly the number the layer produced:"""),
    ("code", """\
row, col = divmod(int(stages.conv[0].argmax()), stages.conv.shape[2])
pixel = explain_pixel(stages.input, stages.kernels, stages.config, 0, row, col,
                      kernel_name=names[0])
print(f"conv pixel ({row}, {col}): explained {pixel.value:.6f}, "
      f"in the conv map {float(stages.conv[0, row, col]):.6f}")
print("pooled cell it feeds:", pixel.pooled_cell)
plot_explanation(pixel)"""),
    ("md", """\
## 8. How big is each map?

The photo is 300x451 pixels, but the conv maps are 298x449. A 3x3 kernel cannot be centred on
the outermost pixels without hanging over the edge, so with no padding one pixel is lost on
every side. The general rule, per axis, for an input of size I, a kernel of size F, padding P
on each side and stride S:

output = (I - F + 2P) / S + 1   (rounded down)

For a 5x5 input and a 3x3 kernel, no padding, stride 1: (5 - 3 + 0)/1 + 1 = 3."""),
    ("code", """\
print("5x5 input, 3x3 kernel:", convlens.output_size(5, 3, padding=0, stride=1))
for step in stages.sizes:
    print(f"{step.stage:7s}", step.formula())"""),
    ("md", """\
Padding adds cells around the image so the kernel can be centred on the edge pixels too.
`padding="same"` adds exactly enough to keep the size (with stride 1); a stride of 2 halves
it. The size chain follows the formula through several layers and also tells how many input
pixels one output pixel sees (its receptive field):"""),
    ("code", """\
for padding, stride in ((0, 1), (1, 1), ("same", 1), (1, 2)):
    layer = convlens.LayerConfig(padding=padding, stride=stride, pool=None)
    out = convlens.compute_stages(gray, kernels[:1], layer).conv.shape
    print(f"padding={padding!s:5s} stride={stride}: conv map {out[1]}x{out[2]}")"""),
    ("code", """\
from IPython.display import HTML

from convlens.display import size_chain_html
from convlens.sizes import size_chain

chain = size_chain((300, 451), "conv3, pool2, conv3 p1, pool2")
HTML(size_chain_html(chain))"""),
    ("md", """\
## 9. Let a network learn its own kernels

So far we chose the kernels. A CNN learns them: it starts from random numbers and nudges every
weight, image after image, in the direction that makes its answers less wrong. Let's train a
small CNN on scikit-learn's handwritten digits: 1797 gray 8x8 images of the digits 0 to 9, of
which a fifth is kept aside to measure accuracy on images the network never saw.

The network (`tinyvgg`) has two blocks of two 3x3 conv layers, each with ReLU, each block
ending in 2x2 max pooling: the layer of steps 4 to 6, twice over, then one linear layer that
turns the last maps into ten class scores. Training takes a few seconds on a CPU; the run's
files go to a temporary folder. The same run from a terminal is `convlens train`."""),
    ("code", """\
import tempfile
from pathlib import Path

from rich.console import Console

from convlens.results.training import train
from convlens.train import TrainConfig

run_dir = Path(tempfile.mkdtemp(prefix="convlens-tutorial-")) / "digits"
log = Console(width=100, force_jupyter=False)      # the training log as plain text
result = train(TrainConfig(data="digits", out=run_dir), console=log, progress=False)"""),
    ("md", """\
The table shows each pass over the training images (an *epoch*): the loss falls, the
accuracy on held-out validation images climbs to about 99%. The epoch that does best there is
kept, and only then is it measured on test images that chose nothing, the honest number
(about 99.5%), a little above a classic support vector machine on the same splits. The
learning curves and the confusion matrix (which digits get mistaken for which) are saved as
pictures in the run folder:"""),
    ("code", """\
from IPython.display import Image as ShowImage

ShowImage(filename=run_dir / "curves.png", width=800)"""),
    ("md", """\
## 10. The kernels it learned

The first conv layer holds 32 learned 3x3 kernels. Nobody told it to look for edges, yet many
of them look like the hand-made ones from step 3: a bright row against a dark row, or a
column against a column. Next to each learned kernel is the built-in kernel it is closest to
(cosine similarity; a minus sign means the same pattern with the opposite polarity)."""),
    ("code", """\
from convlens.inspect import conv_layers, conv_weights, nearest_kernels
from convlens.models import open_model
from convlens.plot.models import plot_filters, plot_learned_vs_classical

digits_model = open_model(run_dir)          # the run folder is a convlens checkpoint
first = conv_layers(digits_model)[0]
learned = conv_weights(digits_model, first)  # (32, 1, 3, 3)
plot_filters(learned, first)"""),
    ("code", """\
plot_learned_vs_classical(learned, nearest_kernels(learned), first, max_pairs=12)"""),
    ("md", """\
The animation in the run folder shows these kernels epoch by epoch from their random start
(left) and, on its own colour scale, how far each weight has moved since then (right):
training reshapes the random start into the patterns above rather than drawing them anew:"""),
    ("code", """\
ShowImage(filename=run_dir / "filters-evolution.gif")"""),
    ("md", """\
To close the circle, put the learned kernels to work on the cat photo, exactly as we did with
Sobel and the Laplacian, taking the four that resemble a built-in kernel most closely.

One adjustment: unlike Sobel's, a learned kernel's weights need not add up to 0, so it also
answers to plain brightness and its whole map shifts to one colour. In the network, the batch
normalization after each conv layer removes that shift; subtracting each kernel's mean weight
does much the same here, leaving the pattern it looks for."""),
    ("code", """\
matches = [m for m in nearest_kernels(learned) if m is not None]
best = sorted(matches, key=lambda m: -abs(m.cosine))[:4]
learned_kernels = []
for match in best:
    values = learned[match.filter_index].numpy()                  # (1, 3, 3)
    learned_kernels.append(convlens.Kernel(f"learned #{match.filter_index} (~{match.label})",
                                           values - values.mean()))
convlens.compute_stages(gray, learned_kernels, config)"""),
    ("md", """\
The run folder was temporary. To keep the trained model, copy it somewhere first; then this
removes it:"""),
    ("code", """\
import shutil

print("removing", run_dir.parent)
shutil.rmtree(run_dir.parent)"""),
    ("md", """\
## Try it yourself

The explorer below puts all of this on one screen: pick a photo or upload your own, edit any
cell of a kernel or choose a preset, change stride, padding, activation and pooling, and every
map redraws. Below the maps, pick a pixel: the explorer shows the patch, the products and the
sum behind that one number, and outlines where it comes from. It needs Jupyter with
ipywidgets (`pip install 'convlens[widgets]'`); elsewhere it shows one line of text."""),
    ("code", """\
from convlens.widgets import explore

explore()"""),
]

OWN_MODEL: Cells = [
    ("md", """\
# Look inside your own CNN

convlens opens image classifiers written in plain PyTorch, not only its own. This notebook
plays the part of your project: it defines a small network in a file of its own, trains it
for a few seconds on scikit-learn's handwritten digits (they come with scikit-learn, nothing
is downloaded), saves the weights, and then opens the model with convlens to look inside:

1. its layers, with output shapes, parameters and receptive fields,
2. the filters its first layer learned, next to the nearest hand-made kernels,
3. the feature maps one digit produces at each layer,
4. its prediction, and which pixels the prediction rests on (saliency),
5. any number inside it, worked out from the layer before.

The notebook works in a fresh temporary folder, so it leaves nothing behind in yours."""),
    ("code", """\
%matplotlib inline
import os
import tempfile

import numpy as np
import torch
from IPython.display import HTML

import convlens
from convlens.display import layer_table_html

torch.manual_seed(0)
start_dir = os.getcwd()
workdir = tempfile.mkdtemp(prefix="convlens-own-model-")
os.chdir(workdir)
print("working in", workdir)"""),
    ("md", """\
## Your model

Any `nn.Module` will do. Here it is written to `digitnet.py`, the way it would live in your
project: two conv blocks that see 8x8 gray digits, then a linear layer that scores the ten
classes. Giving layers names (or keeping them in `nn.Sequential` blocks) makes them easy to
pick later."""),
    ("code", """\
%%writefile digitnet.py
import torch.nn as nn


class DigitNet(nn.Module):
    \"\"\"8x8 gray digit -> 10 class scores.\"\"\"

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),   # 8 filters, 8x8 -> 8x8
            nn.ReLU(),
            nn.MaxPool2d(2),                             # 8x8 -> 4x4
            nn.Conv2d(8, 16, kernel_size=3, padding=1),  # 16 filters, 4x4 -> 4x4
            nn.ReLU(),
            nn.MaxPool2d(2),                             # 4x4 -> 2x2
        )
        self.classifier = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))"""),
    ("md", """\
## Train it for a few seconds

A plain PyTorch loop, as in most projects. The digits are 8x8 images with values 0 to 16;
dividing by 16 puts them in [0, 1] like any image convlens loads. A fifth of them is kept
aside to measure accuracy honestly."""),
    ("code", """\
from digitnet import DigitNet  # your model, from the file above
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
images = torch.tensor(digits.images / 16, dtype=torch.float32)[:, None]    # (N, 1, 8, 8)
labels = torch.tensor(digits.target)
train_x, test_x, train_y, test_y = train_test_split(
    images, labels, test_size=0.2, stratify=labels, random_state=0)

model = DigitNet()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
for epoch in range(12):
    model.train()
    for batch in torch.randperm(len(train_x)).split(64):
        loss = torch.nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(test_x).argmax(1) == test_y).float().mean()
    print(f"epoch {epoch + 1:2d}: loss {loss.item():.3f}, held-out accuracy {accuracy:.1%}")"""),
    ("code", """\
from safetensors.torch import save_file

save_file(model.state_dict(), "digitnet.safetensors")
sorted(os.listdir("."))"""),
    ("md", """\
## Open it with convlens

`open_model` takes the same specs as the command line: here `module:factory` (your class,
importable from the current folder) plus the weights file. Importing your module runs
your code, so convlens asks you to say you trust it (`trust_code=True`, `--trust-code` on the
command line); the weights are read with safetensors, which cannot run code. The digits are
8x8, so we tell convlens the input size, and give the classes their names."""),
    ("code", """\
from convlens.models import open_model

opened = open_model("digitnet:DigitNet", weights="digitnet.safetensors", input_size=8,
                    trust_code=True)  # our own module
opened.class_names = [str(digit) for digit in range(10)]
print(opened.describe())"""),
    ("md", """\
## 1. The layers

One blank 8x8 image runs through the model and every layer reports its output shape. The
receptive field says how many input pixels one value of that layer depends on: it grows with
every conv and pool layer, until the second block sees the whole digit."""),
    ("code", """\
from convlens.inspect import layer_table

HTML(layer_table_html(layer_table(opened)))"""),
    ("md", """\
When the input does not fit, convlens does not stop at PyTorch's error: the table shows every
layer up to the one that failed and what did not match. With 12x12 inputs the flattened
features no longer fit the linear layer:"""),
    ("code", """\
HTML(layer_table_html(layer_table(opened, (12, 12), strict=False)))"""),
    ("md", """\
## 2. What the first layer learned

The first conv layer's eight 3x3 filters, red for positive weights and blue for negative.
Nobody told the network to look for edges; whatever structure appears came from training.
Next to each filter is the built-in kernel it resembles most (cosine similarity; a minus sign
means the same pattern with opposite polarity). After a few seconds of training on tiny
digits the resemblance is loose; longer training on larger images gives cleaner edge
detectors."""),
    ("code", """\
from convlens.inspect import conv_weights, nearest_kernels
from convlens.plot.models import plot_filters, plot_learned_vs_classical

filters = conv_weights(opened, "features.0")
plot_filters(filters, "features.0")"""),
    ("code", """\
plot_learned_vs_classical(filters, nearest_kernels(filters), "features.0")"""),
    ("md", """\
## 3. Feature maps of one digit

Take a digit the model never trained on and record what each block produces. The maps are
shown most active first."""),
    ("code", """\
from convlens.inspect import feature_maps
from convlens.models import top_predictions
from convlens.plot.models import plot_feature_maps, plot_predictions

digit = test_x[0]                       # (1, 8, 8) in [0, 1]
print("true label:", int(test_y[0]))
inspection = feature_maps(opened, digit, ["features.1", "features.4"])
plot_feature_maps(inspection.layers["features.1"], top=8)"""),
    ("code", """\
plot_feature_maps(inspection.layers["features.4"], top=8)"""),
    ("md", """\
## 4. The prediction, and what it rests on

The ten class scores become probabilities. Grad-CAM then asks which parts of the last conv
layer's maps raised the score of the predicted class; integrated gradients asks the same of
each input pixel."""),
    ("code", """\
predictions = top_predictions(inspection.output, opened, k=3)
plot_predictions(predictions, f"DigitNet on a held-out {int(test_y[0])}")"""),
    ("code", """\
from convlens.plot.models import plot_saliency
from convlens.saliency import explain_class

saliency = explain_class(opened, digit, methods=["gradcam", "integrated-gradients"])
plot_saliency(saliency)"""),
    ("md", """\
## 5. Any number inside it, worked out

Every number of every layer can be explained exactly: `explain_activation` shows how the
value at (channel, y, x) of a layer's output was made from that layer's input. For a conv
layer: the patch of each input channel, its kernel slice and products, each channel's
partial sum, ranked, and the bias. The total equals what the layer gave."""),
    ("code", """\
from convlens.activations import explain_activation

explain_activation(opened, digit, "features.3", channel=2, y=1, x=1)"""),
    ("md", """\
The network view does it for any layer at once: pick a layer, a channel and a cell (with
`ipyevents` installed, click the map) and read its arithmetic. `convlens serve --model ...`
shows the same as columns of channel thumbnails in the browser."""),
    ("code", """\
from convlens.widgets import explore_network

view = explore_network(opened, digit, "features.3")
view"""),
    ("md", """\
## The same from the command line

Everything above is also one command away, in the folder that holds `digitnet.py`:

    convlens layers digitnet:DigitNet --weights digitnet.safetensors --input-size 8 --trust-code
    convlens inspect digitnet:DigitNet digit.png --weights digitnet.safetensors --all-conv \\
        --trust-code
    convlens saliency digitnet:DigitNet digit.png --weights digitnet.safetensors --trust-code
    convlens explain digitnet:DigitNet digit.png --weights digitnet.safetensors --trust-code \\
        --layer features.3 --channel 2 --at 1,1

A convlens checkpoint (from `convlens train`), a TorchScript file or a `torch.export` program
opens the same way, without the `--weights`.

Finally, go back to where we started and delete the temporary folder (copy `digitnet.py`
and the weights out first if you want to keep them)."""),
    ("code", """\
import shutil

os.chdir(start_dir)
shutil.rmtree(workdir)"""),
]

NOTEBOOKS: dict[str, Cells] = {"tutorial.ipynb": TUTORIAL, "own-model.ipynb": OWN_MODEL}


def build(cells: Cells) -> nbformat.NotebookNode:
    """A notebook of ``cells`` with no outputs and stable cell ids (so rebuilding is a no-op)."""
    notebook = new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    for index, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = f"cell-{index:02d}"
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def render(cells: Cells) -> str:
    """The ``.ipynb`` text of ``cells``."""
    return nbformat.writes(build(cells)) + "\n"


def content(text: str) -> tuple:
    """What matters of a notebook's text: its metadata and each cell's kind, id, source and
    outputs (so another nbformat version writing the same notebook still compares equal)."""
    notebook = nbformat.reads(text, as_version=4)
    cells = tuple((cell.cell_type, cell.get("id"), cell.source, len(cell.get("outputs", [])),
                   cell.get("execution_count")) for cell in notebook.cells)
    return dict(notebook.metadata), cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 if a notebook differs from this file")
    args = parser.parse_args(argv)
    stale = []
    for name, cells in NOTEBOOKS.items():
        path = HERE / name
        text = render(cells)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current is not None and content(current) == content(text):
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python examples/build_notebooks.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
