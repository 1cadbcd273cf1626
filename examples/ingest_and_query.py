"""A small RAG-style application on Chroma on AWS: ingest documents, then answer questions with their neighbours.

    python examples/ingest_and_query.py --env prod                    # a deployed environment (AWS credentials)
    python examples/ingest_and_query.py --endpoint URL --token TOKEN  # any endpoint behind the gateway

It uses only the client package (client/) and chromadb's own API. The embedding function is deterministic and
local (hashed character trigrams), so the example downloads no model; swap in your real embedding function.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys

from chromadb import Documents, EmbeddingFunction, Embeddings

from chroma_on_aws_client import connect

DIMENSIONS = 64
DOCUMENTS = {
    "efs": "Chroma keeps its data on an encrypted EFS file system, one directory per node.",
    "gateway": "The gateway checks every request's token before it reaches Chroma on loopback.",
    "backup": "Every backup is a quiesced copy: writes pause while the node copies what changed.",
    "restore": "A restore brings a recovery point back and verifies every collection's count.",
    "rotation": "The token rotates every month; clients re-read it and never miss a request.",
}


class TrigramEmbedding(EmbeddingFunction[Documents]):  # type: ignore[misc]
    """Deterministic, dependency-free embeddings: hashed character trigrams, normalised."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        vectors = []
        for text in input:
            vector = [0.0] * DIMENSIONS
            padded = f"  {text.lower()}  "
            for i in range(len(padded) - 2):
                vector[hashlib.sha256(padded[i:i + 3].encode()).digest()[0] % DIMENSIONS] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors

    @staticmethod
    def name() -> str:
        return "trigram-example"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env")
    parser.add_argument("--endpoint")
    parser.add_argument("--token", default=os.environ.get("CHROMA_TOKEN"))
    parser.add_argument("--collection", default="example-docs")
    args = parser.parse_args(argv)
    client = connect(args.env) if args.env else connect(endpoint=args.endpoint, token=args.token)
    docs = client.get_or_create_collection(args.collection, embedding_function=TrigramEmbedding())
    docs.upsert(ids=list(DOCUMENTS), documents=list(DOCUMENTS.values()))  # idempotent: safe to run again
    for question in ("is every backup a quiesced copy?", "what checks every request's token?"):
        answer = docs.query(query_texts=[question], n_results=1)
        print(f"{question} -> {answer['ids'][0][0]}: {answer['documents'][0][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
