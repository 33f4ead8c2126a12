#!/usr/bin/python3
"""Generates the harvest's identity test: an "episode" of scenes in which faces cut from
face-api's sample photos (real photos of different people) move across changing
backgrounds, with the ground truth of who is where in every frame, and a gallery of the same
people made from differently cut photos of them.

Each scene (4 s at 24 fps) shows 2 or 3 of the people, each moving along a straight line and
growing or shrinking a little; every person appears in several scenes, so a harvest should
find several tracks per person and group them. Seeded: the same seed gives the same episode.

Writes OUT/episode.mp4 (H.264, 640x360), OUT/truth.json and OUT/gallery/<name>/photo.jpg.
usage: make_episode.py MEDIA_DIR OUT_DIR [--seed 7] [--scenes 16]
"""
import argparse
import json
import os
import random
import subprocess
import sys

import numpy as np

W, H, FPS, SCENE_FRAMES, FACE = 640, 360, 24, 96, 128
# (photo, box) of each person: faces of face-api's samples (the boxes its SSD detector gives,
# tests/vision/fixtures/sample_faces_ssd.json), one per photo where two photos might show the
# same person.
PEOPLE = {
    "ana": ("sample1.jpg", (414.1, 355.2, 591.6, 593.9)),
    "bea": ("sample1.jpg", (838.0, 421.1, 1024.8, 648.4)),
    "cora": ("sample2.jpg", (1447.4, 153.5, 1640.5, 395.8)),
    "dana": ("sample4.jpg", (664.3, 52.0, 851.1, 310.4)),
    "eva": ("sample5.jpg", (787.5, 108.5, 943.4, 320.8)),
    "fay": ("sample6.jpg", (680.8, 320.5, 840.7, 628.0)),
}


def crop(photo, box, margin, size, flip=False):
    """The face's box grown by `margin` around its centre, square, scaled to size x size (RGB)."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * margin
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    vf = f"crop={int(side)}:{int(side)}:{int(cx - side / 2)}:{int(cy - side / 2)},scale={size}:{size}"
    if flip:
        vf += ",hflip"
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", photo, "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(size, size, 3)


def resize(img, size):
    """Bilinear resize of a square RGB image."""
    n = img.shape[0]
    pos = (np.arange(size) + 0.5) * n / size - 0.5
    p0 = np.clip(np.floor(pos).astype(int), 0, n - 1)
    p1 = np.clip(p0 + 1, 0, n - 1)
    f = np.clip(pos - p0, 0, 1)
    rows = img[p0].astype(np.float32) * (1 - f)[:, None, None] + img[p1].astype(np.float32) * f[:, None, None]
    out = rows[:, p0] * (1 - f)[None, :, None] + rows[:, p1] * f[None, :, None]
    return out.astype(np.uint8)


def background(rng):
    top, bottom = np.array(rng.sample(range(30, 200), 3)), np.array(rng.sample(range(30, 200), 3))
    t = np.linspace(0, 1, H)[:, None, None]
    img = top * (1 - t) + bottom * t + np.zeros((H, W, 3))
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 6, (H, W, 3))
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("media")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--scenes", type=int, default=16)
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    names = sorted(PEOPLE)
    faces = {n: crop(os.path.join(a.media, PEOPLE[n][0]), PEOPLE[n][1], 1.5, FACE) for n in names}
    for n in names:  # the gallery: cut wider and mirrored, a different picture of the same face
        os.makedirs(os.path.join(a.out, "gallery", n), exist_ok=True)
        g = crop(os.path.join(a.media, PEOPLE[n][0]), PEOPLE[n][1], 2.0, 256, flip=True)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "256x256", "-i", "-",
                        os.path.join(a.out, "gallery", n, "photo.jpg")], input=g.tobytes(), check=True)

    # Who is in each scene: two or three people, taken in turn from shuffled rounds of everyone,
    # so everyone appears about as often (each in several scenes).
    casts, queue = [], []
    for _ in range(a.scenes):
        cast = []
        while len(cast) < rng.choice([2, 3]) or len(cast) < 2:
            if not any(n not in cast for n in queue):
                more = names[:]
                rng.shuffle(more)
                queue += more
            cast.append(queue.pop(next(i for i, n in enumerate(queue) if n not in cast)))
        casts.append(sorted(cast))
    encoder = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
                                "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "48",
                                "-pix_fmt", "yuv420p", os.path.join(a.out, "episode.mp4.part.mp4")], stdin=subprocess.PIPE)
    truth = {"fps": FPS, "width": W, "height": H, "people": names, "scenes": []}
    frame_no = 0
    for s, cast in enumerate(casts):
        bg = background(rng)
        lanes = rng.sample(range(3), len(cast))  # each person in their own third of the frame
        actors = []
        for person, lane in zip(cast, lanes):
            x0 = lane * W / 3 + rng.uniform(10, W / 3 - 170)
            x1 = lane * W / 3 + rng.uniform(10, W / 3 - 170)
            y0, y1 = rng.uniform(20, H - 180), rng.uniform(20, H - 180)
            s0, s1 = rng.uniform(110, 150), rng.uniform(110, 150)
            actors.append({"person": person, "path": (x0, y0, s0, x1, y1, s1), "boxes": []})
        scene = {"first_frame": frame_no, "actors": actors}
        for f in range(SCENE_FRAMES):
            img = bg.copy()
            t = f / (SCENE_FRAMES - 1)
            for actor in actors:
                x0, y0, s0, x1, y1, s1 = actor["path"]
                size = int(round(s0 + (s1 - s0) * t))
                x, y = int(round(x0 + (x1 - x0) * t)), int(round(y0 + (y1 - y0) * t))
                img[y:y + size, x:x + size] = resize(faces[actor["person"]], size)
                # The face itself: the photo's box inside the pasted square (margin 1.5).
                inner = size / 1.5
                actor["boxes"].append([round(x + (size - inner) / 2, 1), round(y + (size - inner) / 2, 1),
                                       round(x + (size + inner) / 2, 1), round(y + (size + inner) / 2, 1)])
            encoder.stdin.write(img.tobytes())
            frame_no += 1
        scene["last_frame"] = frame_no - 1
        for actor in actors:
            del actor["path"]
        truth["scenes"].append(scene)
    encoder.stdin.close()
    if encoder.wait() != 0:
        sys.exit("make_episode: ffmpeg failed")
    os.replace(os.path.join(a.out, "episode.mp4.part.mp4"), os.path.join(a.out, "episode.mp4"))
    with open(os.path.join(a.out, "truth.json"), "w") as f:
        json.dump(truth, f)
    print(f"make_episode: {len(casts)} scenes, {frame_no} frames, {len(names)} people -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
