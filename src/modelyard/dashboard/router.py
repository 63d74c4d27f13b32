"""Routes for the dashboard: the page at ``/`` and its files under ``/static``."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from modelyard.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"

# Browsers revalidate every file (cheap: FileResponse sends ETag and Last-Modified), so a new
# release of the page is never mixed with cached modules of the old one.
_CACHE = {"Cache-Control": "no-cache"}
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The dashboard page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=_CACHE)


@router.get("/dashboard")
async def dashboard_alias() -> RedirectResponse:
    return RedirectResponse("/", status_code=307)


@router.get("/static/{path:path}")
async def static_file(path: str) -> FileResponse:
    """A file under the static folder. Raises NotFoundError for anything outside it."""
    return FileResponse(static_path(path), media_type=media_type(path), headers=_CACHE)


def static_path(path: str, root: Path = STATIC_DIR) -> Path:
    """Resolve ``path`` inside ``root``; refuses traversal, hidden files and folders."""
    base = root.resolve()
    candidate = (base / path).resolve()
    if (
        not path
        or any(part.startswith(".") for part in Path(path).parts)
        or not candidate.is_relative_to(base)
        or not candidate.is_file()
    ):
        raise NotFound(f"no dashboard file {path!r}")
    return candidate


def media_type(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"
