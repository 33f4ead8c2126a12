#!/usr/bin/python3
"""Builds the long test video for `vigil harvest`: the real opencv-doc clips (Megamind.avi, a
face in nearly every frame; vtest.avi, pedestrians) in a seeded random order, some mirrored,
until the length is reached, as one H.264 MP4 (720x528, 24 fps). The same seed gives the same
sequence of clips.

usage: make_long_video.py MEGAMIND.avi VTEST.avi OUT.mp4 [--minutes 16] [--seed 9]
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile

SIZE = "720:528"
FPS = 24
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-g", "96", "-pix_fmt", "yuv420p", "-an"]


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def duration(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("megamind")
    p.add_argument("vtest")
    p.add_argument("out")
    p.add_argument("--minutes", type=float, default=16)
    p.add_argument("--seed", type=int, default=9)
    a = p.parse_args()
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        # Each clip once per variant, all with the same size, rate and encoder settings, as
        # MPEG-TS (parameter sets in band), so they join without re-encoding.
        clips = {}
        for name, src in (("megamind", a.megamind), ("vtest", a.vtest)):
            for flip in (False, True):
                out = os.path.join(tmp, f"{name}{'_flip' if flip else ''}.ts")
                vf = f"scale={SIZE},fps={FPS},setsar=1" + (",hflip" if flip else "")
                ffmpeg("-i", src, "-vf", vf, *X264, "-bsf:v", "h264_mp4toannexb", "-f", "mpegts", out)
                clips[out] = duration(out)
        names = sorted(clips)
        order, total = [], 0.0
        while total < a.minutes * 60:
            pick = rng.choice(names)
            order.append(pick)
            total += clips[pick]
        listing = os.path.join(tmp, "list.txt")
        with open(listing, "w") as f:
            for clip in order:
                f.write(f"file '{clip}'\n")
        part = a.out + ".part"
        ffmpeg("-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", "-movflags", "+faststart", "-f", "mp4", part)
        os.replace(part, a.out)
        print(f"make_long_video: {len(order)} clips, {total / 60:.1f} min -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
