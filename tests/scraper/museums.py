"""Local imitations of the museum APIs, answering in each API's documented format."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from tests.localserver import Answer, LocalServer
from tests.scraper.helpers import encode


def artwork_jpeg(seed: int, side: int = 320) -> bytes:
    """A distinct picture per seed: smooth random colour fields (far apart in phash)."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    image = Image.fromarray(cells).resize((side, side), Image.Resampling.BICUBIC)
    return encode(image, "JPEG", quality=90)


def works(n: int, closed: tuple[int, ...] = (), imageless: tuple[int, ...] = ()) -> list[dict]:
    """``n`` works: their id, whether public domain, whether they have an image."""
    return [
        {
            "id": 1000 + i,
            "open": i not in closed,
            "image": i not in imageless,
            "title": f"Still Life with Lemons {i}",
            "artist": f"Painter {i}",
            "date": f"ca. {1600 + i}",
        }
        for i in range(n)
    ]


def serve_met(server: LocalServer, items: list[dict]) -> None:
    """``/public/collection/v1/search`` then ``/objects/{id}``, as collectionapi.metmuseum.org."""
    api = "/public/collection/v1"
    ids = [w["id"] for w in items]

    def search(q: dict[str, list[str]]) -> Answer:
        if q.get("hasImages") != ["true"] or not q.get("q"):
            return Answer(b'{"total":0,"objectIDs":null}')
        return Answer(json.dumps({"total": len(ids), "objectIDs": ids}).encode())

    server.routes[f"{api}/search"] = search
    for w in items:
        image = server.url(f"/met/{w['id']}.jpg") if w["open"] and w["image"] else ""
        body = {
            "objectID": w["id"],
            "isHighlight": False,
            "accessionNumber": f"29.100.{w['id']}",
            "isPublicDomain": w["open"],
            "primaryImage": image,
            "primaryImageSmall": image.replace(".jpg", "-small.jpg") if image else "",
            "additionalImages": [],
            "department": "European Paintings",
            "objectName": "Painting",
            "title": w["title"],
            "culture": "",
            "period": "",
            "artistDisplayName": w["artist"],
            "artistDisplayBio": "Dutch, 1600-1660",
            "objectDate": w["date"],
            "medium": "Oil on canvas",
            "objectURL": f"https://www.metmuseum.org/art/collection/search/{w['id']}",
        }
        server.routes[f"{api}/objects/{w['id']}"] = Answer(json.dumps(body).encode())
        server.routes[f"/met/{w['id']}.jpg"] = Answer(artwork_jpeg(w["id"]))


def serve_artic(server: LocalServer, items: list[dict]) -> None:
    """``/api/v1/artworks/search`` with ``fields``, images under ``config.iiif_url``."""
    iiif = server.url("/iiif/2")

    def search(q: dict[str, list[str]]) -> Answer:
        limit = int(q.get("limit", ["10"])[0])
        page = int(q.get("page", ["1"])[0])
        only_open = q.get("query[term][is_public_domain]") == ["true"]
        kept = [w for w in items if w["open"] or not only_open]
        chosen = kept[(page - 1) * limit : page * limit]
        total_pages = max(1, -(-len(kept) // limit))
        data = []
        for w in chosen:
            data.append(
                {
                    "_score": 100.0,
                    "id": w["id"],
                    "title": w["title"],
                    "image_id": f"img-{w['id']}" if w["image"] else None,
                    "is_public_domain": w["open"],
                    "artist_display": f"{w['artist']}\nDutch, 1600-1660",
                    "artist_title": w["artist"],
                    "date_display": w["date"],
                    "thumbnail": {
                        "lqip": "data:image/gif;base64,R0lGODlh",
                        "width": 1686,
                        "height": 1686,
                        "alt_text": "A still life.",
                    },
                }
            )
        body = {
            "preference": None,
            "pagination": {
                "total": len(kept),
                "limit": limit,
                "offset": (page - 1) * limit,
                "total_pages": total_pages,
                "current_page": page,
            },
            "data": data,
            "info": {"license_text": "CC0", "license_links": [], "version": "1.13"},
            "config": {"iiif_url": iiif, "website_url": "http://www.artic.edu"},
        }
        return Answer(json.dumps(body).encode())

    server.routes["/api/v1/artworks/search"] = search
    for w in items:
        path = f"/iiif/2/img-{w['id']}/full/843,/0/default.jpg"
        server.routes[path] = Answer(artwork_jpeg(w["id"], 843))


def serve_cleveland(server: LocalServer, items: list[dict]) -> None:
    """``/api/artworks/?q=…&cc0=1&has_image=1``, as openaccess-api.clevelandart.org."""

    def search(q: dict[str, list[str]]) -> Answer:
        limit = int(q.get("limit", ["1000"])[0])
        skip = int(q.get("skip", ["0"])[0])
        kept = [
            w
            for w in items
            if (w["open"] or q.get("cc0") != ["1"]) and (w["image"] or q.get("has_image") != ["1"])
        ]
        chosen = kept[skip : skip + limit]
        data = []
        for w in chosen:
            web = (
                {
                    "url": server.url(f"/cma/{w['id']}_web.jpg"),
                    "width": "320",
                    "height": "320",
                    "filesize": "40000",
                    "filename": f"{w['id']}_web.jpg",
                }
                if w["image"]
                else None
            )
            data.append(
                {
                    "id": w["id"],
                    "accession_number": f"1958.{w['id']}",
                    "share_license_status": "CC0" if w["open"] else "Copyrighted",
                    "title": w["title"],
                    "creation_date": w["date"],
                    "creators": [
                        {
                            "id": 1,
                            "description": f"{w['artist']} (Dutch, 1600-1660)",
                            "role": "artist",
                        }
                    ],
                    "culture": ["Netherlands, 17th century"],
                    "url": f"https://clevelandart.org/art/1958.{w['id']}",
                    "images": {"web": web} if web else {},
                }
            )
        body = {
            "info": {"total": len(items), "parameters": {"q": q.get("q", [""])[0]}},
            "data": data,
        }
        return Answer(json.dumps(body).encode())

    server.routes["/api/artworks/"] = search
    for w in items:
        server.routes[f"/cma/{w['id']}_web.jpg"] = Answer(artwork_jpeg(w["id"]))


SERVE = {"met": serve_met, "artic": serve_artic, "cleveland": serve_cleveland}
