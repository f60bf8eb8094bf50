#!/usr/bin/env python3
"""Draws the web app's icons (html/icons/*.png, html/favicon.ico) once; the
files are committed, this script is how they were made (Python's standard
library only: zlib and struct for PNG, no image package).

    python3 html/icons/draw-icons.py

The design is that of icon.svg: a waveform of five white bars on the
accent colour (#0b57d0, theme-color).  "any" icons have rounded corners;
the maskable one fills its square and keeps the bars inside the safe zone
(a circle of 40% of the size), as platforms crop it to their own shape.
"""

import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ACCENT = (0x0b, 0x57, 0xd0)
WHITE = (0xff, 0xff, 0xff)

# bars: centre x, half height (fractions of the size)
BARS = [(-0.28, 0.15), (-0.14, 0.275), (0.0, 0.40), (0.14, 0.275),
        (0.28, 0.15)]
BAR_HALF_W = 0.045
SS = 4                      # supersampling per axis


def inside_rounded(x, y, r):
    """(x, y) in [0,1]^2 inside a square with corners of radius r."""
    cx = min(max(x, r), 1 - r)
    cy = min(max(y, r), 1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def inside_bar(x, y, scale):
    for bx, bh in BARS:
        hw, hh = BAR_HALF_W * scale, bh * scale
        dx = abs(x - 0.5 - bx * scale)
        dy = abs(y - 0.5)
        if dx > hw:
            continue
        # a bar with round ends: a capsule
        if dy <= hh - hw:
            return True
        if dx * dx + (dy - (hh - hw)) ** 2 <= hw * hw:
            return True
    return False


def draw(size, maskable):
    radius = 0.0 if maskable else 0.22
    scale = 0.8 if maskable else 1.0
    rows = []
    n = SS * SS
    for py in range(size):
        row = bytearray([0])            # PNG filter: none
        for px in range(size):
            bg = fg = 0
            for sy in range(SS):
                for sx in range(SS):
                    x = (px + (sx + 0.5) / SS) / size
                    y = (py + (sy + 0.5) / SS) / size
                    if not inside_rounded(x, y, radius):
                        continue
                    if inside_bar(x, y, scale):
                        fg += 1
                    else:
                        bg += 1
            a = (bg + fg) / n
            if a == 0:
                row += bytes(4)
                continue
            t = fg / (bg + fg)
            c = [round(ACCENT[i] * (1 - t) + WHITE[i] * t) for i in range(3)]
            row += bytes(c + [round(255 * a)])
        rows.append(bytes(row))
    return png(size, b''.join(rows))


def chunk(kind, data):
    c = struct.pack('>I', len(data)) + kind + data
    return c + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)


def png(size, raw):
    ihdr = struct.pack('>IIBBBBB', size, size, 8, 6, 0, 0, 0)   # RGBA
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr)
            + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


def ico(pngs):
    """An .ico of PNG images (read by every browser since IE Vista)."""
    head = struct.pack('<HHH', 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    entries = data = b''
    for size, p in pngs:
        entries += struct.pack('<BBBBHHII', size % 256, size % 256, 0, 0, 1,
                               32, len(p), offset)
        data += p
        offset += len(p)
    return head + entries + data


def write(name, data):
    with open(name, 'wb') as f:
        f.write(data)
    print(name, len(data), 'bytes')


if __name__ == '__main__':
    write(os.path.join(HERE, 'icon-192.png'), draw(192, False))
    write(os.path.join(HERE, 'icon-512.png'), draw(512, False))
    write(os.path.join(HERE, 'icon-maskable-512.png'), draw(512, True))
    write(os.path.join(HERE, 'apple-touch-icon.png'), draw(180, True))
    write(os.path.join(HERE, '..', 'favicon.ico'),
          ico([(16, draw(16, False)), (32, draw(32, False)),
               (48, draw(48, False))]))
