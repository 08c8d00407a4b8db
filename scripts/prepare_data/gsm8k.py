"""GSM8K -> text-only training JSON + eval files (benchmark "gsm8k", the last number of the answer).

Sources: openai/gsm8k (config "main"; columns question, answer = the worked solution ending "#### <number>") or
LLM-Adapters' `dataset/gsm8k/{train,test}.json` ({"instruction", "output", "answer"}), as DoRA and MTL-LoRA use it.
The training target is the source's worked solution; the reference is the final number (`#### N`, or the
`answer` column), which `gsm8k_accuracy` compares with the last number of the model's answer.

    python -m scripts.prepare_data.gsm8k --split test [--dataset openai/gsm8k --config main | --dataset test.json]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main


def convert(row, index, args, resources):
    if "question" in row:  # openai/gsm8k
        solution = str(row["answer"]).strip()
        if "####" not in solution:
            raise ValueError(f"row {index}: the answer has no '#### <number>' line")
        question, number = str(row["question"]).strip(), solution.rsplit("####", 1)[1].strip().replace(",", "")
        target = solution
    else:  # LLM-Adapters
        question, target = str(row["instruction"]).strip(), str(row["output"]).strip()
        number = str(row["answer"]).strip().replace(",", "")
    try:
        float(number)
    except ValueError:
        raise ValueError(f"row {index}: the reference {number!r} is not a number") from None
    yield Item(id=f"gsm8k-{args.split}-{index:05d}", text=question, answers=[number], targets=[target])


SPEC = DatasetSpec(task="gsm8k", benchmark="gsm8k", default_dataset="openai/gsm8k", default_config="main",
                   default_split="test", columns=(), convert=convert, image_columns=())

if __name__ == "__main__":
    main(SPEC, __doc__)
