"""RAG-vs-Fine-tune Workbench: the core library.

Everything the app, the CLI and the benchmarks do goes through this package. It never imports
Streamlit (``workbench/ui`` is the one exception and no core module imports it), and heavy
libraries (torch, transformers, chromadb) are imported inside the functions that need them, so
``import workbench`` is cheap and works without them.
"""

__version__ = "0.1.0"
