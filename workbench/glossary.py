"""The words the pages use, in plain language (the Glossary page and tooltips read from here)."""

TERMS: dict[str, str] = {
    "Base": "The model as it comes, answering from what it learned in pre-training. No documents, no extra training.",
    "Prompted": "The base model told the answer format and shown a few example questions with their answers "
                "(few-shot). The fair \"prompt engineering first\" baseline.",
    "RAG (retrieval-augmented generation)": "Before answering, the app searches your documents and puts the best "
                                            "passages into the prompt, so the model can answer from them and cite "
                                            "them. Changing a document changes the answer as soon as it is "
                                            "re-indexed.",
    "Fine-tuning": "Training the model further on your question-answer pairs, so it learns a format, a tone or "
                   "facts. Changing what it knows means training again.",
    "Hybrid": "A fine-tuned model that is also given retrieved passages.",
    "Adapter (LoRA, QLoRA)": "The small set of extra weights fine-tuning produces; the base model stays as it is. "
                             "LoRA trains low-rank matrices beside the model's own; QLoRA does the same over a "
                             "4-bit copy of the model, to save memory on a GPU.",
    "LoRA rank": "The size of an adapter's matrices. Higher ranks can learn more and take longer to train.",
    "Retrieval-aware fine-tuning": "Training an adapter on prompts that already hold the passages retrieval finds "
                                   "(some of them unrelated), so it learns to read them and to say when they do "
                                   "not hold the answer.",
    "Token": "The unit a model reads and writes: a word or a piece of one (about 4 characters of English). "
             "Prices and speeds are counted in tokens.",
    "Time to first token": "How long the user waits before the first word of the answer appears.",
    "Tokens per second": "How fast the answer is written once it starts.",
    "Chunk / passage": "A piece of a document (a few sentences to a few paragraphs) stored in the index and "
                       "retrieved as a unit.",
    "Embedding": "A list of numbers that stands for a text's meaning; texts with close embeddings mean similar "
                 "things. Used to find passages by meaning.",
    "BM25": "Classic keyword search: finds passages that share rare words with the question.",
    "Fusion": "Merging the results of keyword (BM25) and meaning (embedding) search into one ranking.",
    "Rerank": "A second, finer look at the retrieved passages to put the most relevant first.",
    "Semantic cache": "Reusing an earlier answer when a new question means nearly the same thing.",
    "Verdict": "The judgement on one answer against the expected answer: correct (every key fact present, none "
               "contradicted), partial, wrong, stale (an old value the documents no longer say), refused or "
               "unscored (nothing checkable).",
    "Correct (share)": "The share of answerable test questions judged correct. Shown with the number of questions "
                       "and a 95% range.",
    "95% range (Wilson interval)": "Where the true rate probably lies given how few questions were asked. Two "
                                   "approaches whose ranges overlap may not really differ.",
    "Follows the format": "Whether an answer has the required shape (for example Summary / Answer / Sources "
                          "lines). It says nothing about whether the answer is right.",
    "Grounded": "For approaches given passages: the share of the answer's facts that the passages contain.",
    "Token F1": "How many words an answer shares with the expected answer. A rough secondary measure: \"45 days\" "
                "and \"30 days\" share most words and still disagree.",
    "Pareto front": "The approaches no other approach beats on both quality and cost (or speed) at once; the "
                    "sensible choices lie on it.",
    "Blind test": "Answers shown as A, B, C in random order, so you vote on the answer, not the approach.",
    "Break-even": "The traffic or change rate at which two approaches cost the same per month.",
}
