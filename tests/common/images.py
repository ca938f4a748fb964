"""Reading and writing the images the tests and the demo compare: qemu's
screendump PNGs (8-bit RGB) and the PPMs the demo clients write. Images
are (width, height, rows), each row bytes of R, G, B."""
import struct
import zlib


def _check(cond, msg, *more):
    if not cond:
        raise ValueError(msg + "".join(" " + repr(m) for m in more))


def png_read(path):
    """Decode an 8-bit RGB PNG (what qemu's screendump writes) or RGBA (weston-screenshooter's, alpha
    dropped): (w, h, rows)."""
    with open(path, "rb") as f:
        data = f.read()
    _check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG", data[:16])
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    _check(depth == 8 and ctype in (2, 6), "not 8-bit RGB or RGBA: depth %d type %d" % (depth, ctype))
    bpp = 3 if ctype == 2 else 4
    idat, off = b"", 8
    while off < len(data):
        n, kind = struct.unpack(">I4s", data[off:off + 8])
        if kind == b"IDAT":
            idat += data[off + 8:off + 8 + n]
        off += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    _check(len(raw) == h * (stride + 1), "image data of %d bytes for %dx%d" % (len(raw), w, h))
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 0xff
            elif ft == 2:
                line[i] = (line[i] + b) & 0xff
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return w, h, rows


def ppm_read(path):
    """Decode a binary PPM (P6, maxval 255)."""
    with open(path, "rb") as f:
        data = f.read()
    fields, off = [], 0
    while len(fields) < 4:
        while data[off:off + 1].isspace():
            off += 1
        if data[off:off + 1] == b"#":
            off = data.index(b"\n", off) + 1
            continue
        end = off
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[off:end])
        off = end
    off += 1
    _check(fields[0] == b"P6" and fields[3] == b"255", "not an 8-bit binary PPM: %s" % path)
    w, h = int(fields[1]), int(fields[2])
    _check(len(data) - off >= w * h * 3, "%s: short image data" % path)
    return w, h, [data[off + y * w * 3:off + (y + 1) * w * 3] for y in range(h)]


def read(path):
    """A PNG or a PPM, by content."""
    with open(path, "rb") as f:
        head = f.read(2)
    return ppm_read(path) if head == b"P6" else png_read(path)


def png_write(path, w, h, rows):
    """Encode an 8-bit RGB PNG (no filtering)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def differing_pixels(a, b):
    """How many pixels of the overlap of a and b differ, and the sizes."""
    (aw, ah, ar), (bw, bh, br) = a, b
    w, h = min(aw, bw), min(ah, bh)
    bad = 0
    for y in range(h):
        ra, rb = ar[y][:w * 3], br[y][:w * 3]
        if ra != rb:
            bad += sum(1 for x in range(w) if ra[3 * x:3 * x + 3] != rb[3 * x:3 * x + 3])
    return bad


def gl_transform(img, n):
    """what dmabroker-gl draws from img (w, h, RGB rows) as its frame n: mirrored left to right, n's 16 low bits
    as 8x8 blocks along the top row, bit 0 leftmost, white for 1 (tools/gl/dmabroker-gl.c)"""
    w, h, rows = img
    out = []
    for y in range(h):
        px = [rows[y][x * 3:x * 3 + 3] for x in range(w)]
        px.reverse()
        if y < 8:
            for x in range(min(128, w)):
                px[x] = b"\xff\xff\xff" if (n >> (x // 8)) & 1 else b"\x00\x00\x00"
        out.append(b"".join(px))
    return w, h, out


def find(screen, frame):
    """where frame (w, h, rows) is in screen, pixel for pixel: (x, y), or None"""
    sw, sh, srows = screen
    fw, fh, frows = frame
    for y in range(sh - fh + 1):
        x = srows[y].find(frows[0])
        while x >= 0:
            if x % 3 == 0 and all(srows[y + k][x:x + fw * 3] == frows[k] for k in range(fh)):
                return x // 3, y
            x = srows[y].find(frows[0], x + 1)
    return None
