"""The Arrow PyCapsule interface as typing protocols (nothing here needs pyarrow)."""

from __future__ import annotations

from typing import Any, Optional, Protocol, Tuple


class ArrowStreamExportable(Protocol):
    """An object exporting an Arrow C stream: a polars DataFrame, a pyarrow Table or
    RecordBatchReader, a DuckDB relation, ``MetricsResult.to_arrow()``..."""

    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> Any: ...


class ArrowArrayExportable(Protocol):
    """An object exporting one Arrow C array and its schema (a pyarrow RecordBatch)."""

    def __arrow_c_array__(self, requested_schema: Optional[object] = None) -> Tuple[Any, Any]: ...
