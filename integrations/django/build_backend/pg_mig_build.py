"""
pg_mig_build -- the PEP 517 build backend of django-pg-mig: builds the
wheel (and the sdist) from pyproject.toml with the standard library only,
so that ``pip install ./integrations/django`` needs nothing from outside
(no setuptools to download: this machine may have no network).  It writes
only into the directory pip gives it, nothing into the source tree.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _project():
    """_project: the [project] table of pyproject.toml (tomllib, else a reader of this file's subset)."""
    path = os.path.join(ROOT, "pyproject.toml")
    try:
        import tomllib
    except ImportError:   # Python < 3.11
        tomllib = None
    if tomllib is not None:
        with open(path, "rb") as f:
            data = tomllib.load(f)
        return data["project"], data["tool"]["pg_mig_build"]["packages"]
    # the subset pyproject.toml uses: key = "string" | [..strings..] in tables
    data, table = {}, None
    with open(path) as f:
        text = f.read()
    for m in re.finditer(r'^\[([^\]]+)\]\s*$|^([\w.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\])',
                         text, re.M):
        if m.group(1):
            table = data.setdefault(m.group(1), {})
            continue
        raw = m.group(3)
        value = (re.findall(r'"((?:[^"\\]|\\.)*)"', raw) if raw.startswith("[")
                 else raw[1:-1])
        table[m.group(2)] = value
    return data["project"], data["tool.pg_mig_build"]["packages"]


def _names():
    project, packages = _project()
    name = project["name"]
    return project, packages, re.sub(r"[-_.]+", "_", name), project["version"]


def _metadata(project):
    lines = ["Metadata-Version: 2.1", "Name: %s" % project["name"],
             "Version: %s" % project["version"], "Summary: %s" % project["description"],
             "Requires-Python: %s" % project.get("requires-python", ">=3")]
    lines += ["Requires-Dist: %s" % d for d in project.get("dependencies", [])]
    for extra, deps in sorted(project.get("optional-dependencies", {}).items()):
        lines.append("Provides-Extra: %s" % extra)
        lines += ['Requires-Dist: %s; extra == "%s"' % (d, extra) for d in deps]
    lines += ["Classifier: %s" % c for c in project.get("classifiers", [])]
    readme = project.get("readme")
    body = ""
    if readme:
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, readme)) as f:
            body = "\n" + f.read()
    return "\n".join(lines) + "\n" + body


def _package_files(packages):
    """_package_files: (path in the wheel, path on disk) of every .py file of PACKAGES."""
    out = []
    for package in packages:
        directory = os.path.join(ROOT, *package.split("."))
        for entry in sorted(os.listdir(directory)):
            if entry.endswith(".py"):
                out.append(("/".join(package.split(".") + [entry]), os.path.join(directory, entry)))
    return out


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def _dist_info(project, dist, version, packages):
    info = "%s-%s.dist-info" % (dist, version)
    top = sorted({p.split(".")[0] for p in packages})
    return info, {
        info + "/METADATA": _metadata(project).encode(),
        info + "/WHEEL": ("Wheel-Version: 1.0\nGenerator: pg_mig_build\nRoot-Is-Purelib: true\n"
                          "Tag: py3-none-any\n").encode(),
        info + "/top_level.txt": ("\n".join(top) + "\n").encode(),
    }


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    project, packages, dist, version = _names()
    info, files = _dist_info(project, dist, version, packages)
    for path, data in files.items():
        full = os.path.join(metadata_directory, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    return info


def _wheel(wheel_directory, files):
    project, packages, dist, version = _names()
    info, meta = _dist_info(project, dist, version, packages)
    name = "%s-%s-py3-none-any.whl" % (dist, version)
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as whl:
        for path, data in list(files(packages)) + sorted(meta.items()):
            whl.writestr(path, data)
            records.append(_record_line(path, data))
        records.append(info + "/RECORD,,")
        whl.writestr(info + "/RECORD", "\n".join(records) + "\n")
    return name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    def files(packages):
        for path, disk in _package_files(packages):
            with open(disk, "rb") as f:
                yield path, f.read()
    return _wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # a .pth file that puts this directory on sys.path
    return _wheel(wheel_directory, lambda packages: [("django_pg_mig_editable.pth",
                                                      (ROOT + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    project, packages, dist, version = _names()
    base = "%s-%s" % (dist, version)
    name = base + ".tar.gz"
    paths = ["pyproject.toml", "README.md", "build_backend/pg_mig_build.py"]
    paths += [os.path.relpath(disk, ROOT) for _, disk in _package_files(packages)]
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tar:
        for rel in paths:
            tar.add(os.path.join(ROOT, rel), arcname=base + "/" + rel)
        pkg_info = _metadata(project).encode()
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size = len(pkg_info)
        tar.addfile(ti, io.BytesIO(pkg_info))
    return name
