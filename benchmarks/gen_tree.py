"""Generate a large luet-format tree: N packages, a Go template in every build.yaml,
shared `templates/`, collections, plain and final-image dependencies, a values file.

Every build.yaml is distinct, as in a real tree: a package-specific step and one of several
template shapes (so neither a cache keyed on the text nor one keyed on the actions makes
rendering trivially cheap). `--identical` writes the same text everywhere instead.

    python benchmarks/gen_tree.py DIR [--packages 10000] [--seed 1] [--identical]
"""
from __future__ import annotations

import argparse
import os
import random

TEMPLATE = """{{ define "common_env" }}
- ARCH={{ .Values.arch }}
- BRAND={{ .Values.brand | default "orch" }}
{{ end }}
"""

BUILD = """{{ if .Values.final }}requires_final_images: true
{{ end }}{{ if .Values.deps }}requires:
{{- range $d := .Values.deps }}
- name: "{{ $d.name }}"
  category: "{{ $d.category }}"
  version: ">=0"
{{- end }}
{{ else }}image: "{{ .Values.base_image }}"
{{ end }}
env:
{{ template "common_env" . }}
steps:
- echo building {{ .Values.name }} {{ .Values.version }} for {{ .Values.arch }}
{{- if eq .Values.arch "x86_64" }}
- make -j{{ .Values.jobs | default "2" }} install
{{- else }}
- make install
{{- end }}
"""

# Extra blocks mixed into the per-package texts: different actions, not only different literals.
VARIANTS = (
    "",
    """prelude:
- curl -fsSL https://example.org/{{ .Values.name }}-{{ .Values.version }}.tar.gz -o src.tgz
- tar xzf src.tgz
""",
    """{{ if .Values.final }}unpack: true
{{ end }}includes:
- /usr/bin/{{ .Values.name }}
- /usr/share/{{ .Values.name | default "x" }}/.*
""",
    """excludes:
- ^/usr/share/doc
{{- range $i, $e := until 2 }}
- ^/var/cache/{{ $.Values.name }}-{{ $i }}
{{- end }}
""",
    """prelude:
{{- if eq .Values.arch "x86_64" }}
- echo "install_weak_deps=False" >> /etc/dnf/dnf.conf
{{- end }}
- ./bootstrap --arch {{ .Values.arch }} --jobs {{ .Values.jobs }}
""",
)


def build_text(index: int, rng: random.Random, identical: bool) -> str:
    """The build.yaml of package `index`: distinct unless `identical`."""
    if identical:
        return BUILD
    step = (f"- ./configure --prefix=/usr --enable-feature-{index} && make check-{rng.randrange(1000)}\n"
            f"- install -m 0755 build/tool{index} /usr/bin/tool{index}\n")
    return BUILD + step + VARIANTS[rng.randrange(len(VARIANTS))]


def generate(root: str, packages: int, seed: int = 1, identical: bool = False) -> None:
    rng = random.Random(seed)
    tree = os.path.join(root, "packages")
    os.makedirs(os.path.join(tree, "templates"), exist_ok=True)
    with open(os.path.join(tree, "templates", "common.yaml"), "w") as fh:
        fh.write(TEMPLATE)
    with open(os.path.join(root, "values.yaml"), "w") as fh:
        fh.write("arch: x86_64\nbrand: bench\nbase_image: busybox:latest\njobs: '4'\n")
    made: list[tuple[str, str]] = []
    i = 0
    while i < packages:
        cat = f"cat{rng.randrange(40):02d}"
        in_collection = rng.random() < 0.1 and packages - i >= 3
        count = 3 if in_collection else 1
        names = [f"pkg{i + k:05d}" for k in range(count)]
        folder = os.path.join(tree, cat, names[0])
        os.makedirs(folder, exist_ok=True)
        deps = rng.sample(made[-500:], k=min(len(made[-500:]), rng.choice((0, 1, 1, 2, 3))))
        final = bool(deps) and rng.random() < 0.05
        dep_yaml = "".join(f"\n    - {{name: {n}, category: {c}}}" for c, n in deps)
        stanzas = [
            f"  - name: {name}\n    category: {cat}\n    version: \"1.{rng.randrange(10)}.{i + k}\"\n"
            f"    final: {str(final).lower()}\n    deps: {'' if deps else '[]'}{dep_yaml}\n"
            for k, name in enumerate(names)
        ]
        if in_collection:
            with open(os.path.join(folder, "collection.yaml"), "w") as fh:
                fh.write("packages:\n" + "".join(stanzas))
        else:
            with open(os.path.join(folder, "definition.yaml"), "w") as fh:
                fh.write("\n".join(ln[4:] if ln.startswith("    ") else ln[4:] for ln in stanzas[0].splitlines()) + "\n")
        with open(os.path.join(folder, "build.yaml"), "w") as fh:
            fh.write(build_text(i, rng, identical))
        with open(os.path.join(folder, "patch.diff"), "w") as fh:
            fh.write(f"--- a\n+++ b\n@@ {i} @@\n")
        made.extend((cat, n) for n in names)
        i += count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--packages", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--identical", action="store_true", help="the same build.yaml text everywhere")
    args = ap.parse_args()
    generate(args.dir, args.packages, args.seed, args.identical)


if __name__ == "__main__":
    main()
