"""The generated Spotify data every benchmark shares: bench/data/x<scale>, made once per seed."""
import os
import shutil
import subprocess
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(BENCH, "data")


def ensure_data(scale, seed):
    """The folder with the CSVs at `scale`, generating them (gen_spotify.py) unless cached
    for this seed; a `.complete` stamp names the seed, so a half-written folder never counts."""
    folder = os.path.join(DATA, f"x{scale}")
    stamp = os.path.join(folder, ".complete")
    want = f"seed={seed}\n"
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == want:
                return folder
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    print(f"generating x{scale} (seed {seed}) ...", flush=True)
    subprocess.run([sys.executable, os.path.join(BENCH, "gen_spotify.py"), tmp,
                    "--scale", str(scale), "--seed", str(seed)], check=True)
    with open(os.path.join(tmp, ".complete"), "w") as f:
        f.write(want)
    os.rename(tmp, folder)
    return folder
