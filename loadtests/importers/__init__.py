"""Traffic importers, one module per foreign format, registered here and nowhere else."""

from __future__ import annotations

from rolescope.loadtests.importers.base import Importer
from rolescope.loadtests.importers.openai_jsonl import OpenAIJsonlImporter
from rolescope.loadtests.importers.otel_genai import OtelGenAIImporter
from rolescope.loadtests.importers.sharegpt import ShareGPTImporter

IMPORTERS: dict[str, Importer] = {
    importer.name: importer for importer in (OpenAIJsonlImporter(), ShareGPTImporter(), OtelGenAIImporter())
}
