"""Class material: `embedlab teach` serves the explorers to a room, `embedlab handout`
writes one printable page per trap category. An entry point: it may import every stage."""
