"""The YAML catalog: size, the paper's names, and clear errors for bad entries."""
import textwrap

import pytest

from robofail_ros.core.errors import ConfigError, PerturbationError, UnknownNameError
from robofail_ros.core.config import SearchConfig
from robofail_ros.core.perturbations import Catalog
from robofail_ros.core.run import resolve_catalog


def write(tmp_path, body):
    path = tmp_path / "catalog.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_bundled_catalog_has_40_plus_perturbations_over_12_plus_factors_with_the_papers_names():
    catalog = Catalog.load().for_task("Lift")
    assert len(catalog) >= 40
    assert len(catalog.factors()) >= 12
    labels = {p.label for p in catalog}
    assert {"Red Cube", "Green Cube", "Blue Cube", "Red Table", "Green Table", "Blue Table", "Red Robot",
            "Red Light"} <= labels


def test_a_new_perturbation_is_only_yaml(tmp_path):
    catalog = Catalog.load(write(tmp_path, """
        perturbations:
          - {name: purple_table, factor: table_color, rgba: [0.5, 0.1, 0.6]}
    """))
    assert catalog["purple_table"].factor.rgba == (0.5, 0.1, 0.6, 1.0)


@pytest.mark.parametrize("body, message", [
    ("perturbations:\n  - {name: a, factor: table_color, rgba: [1, 0, 0]}\n  - {name: b, factor: tabel_color, rgba: [1, 0, 0]}\n",
     r"catalog.yaml:3: perturbation 'b': unknown factor 'tabel_color'. Did you mean 'table_color'"),
    ("perturbations:\n  - {name: a, factor: table_color, rbga: [1, 0, 0]}\n",
     r"catalog.yaml:2: perturbation 'a': unknown parameter\(s\) \['rbga'\] for factor 'table_color'; it takes \['rgba'\]"),
    ("perturbations:\n  - {name: a, factor: object_mass, scale: -2}\n",
     r"catalog.yaml:2: perturbation 'a': object_mass.scale must be a positive number"),
    ("perturbations:\n  - {name: a, factor: table_color, rgba: [2, 0, 0]}\n",
     r"components must lie in \[0, 1\]"),
    ("perturbations:\n  - {name: a, factor: camera_fov, fovy: 0}\n", r"fovy must lie in"),
    ("perturbations:\n  - {name: Red Table, factor: table_color, rgba: [1, 0, 0]}\n", r"lower-case letters"),
    # A mode named none would be counted with the unperturbed episodes, one named all read as the whole catalog.
    ("perturbations:\n  - {name: none, factor: object_mass, scale: 2}\n",
     r"catalog.yaml:2: perturbation name 'none' is reserved \(every table reports the unperturbed episodes under it\)"),
    ("perturbations:\n  - {name: all, factor: object_mass, scale: 2}\n", r"perturbation name 'all' is reserved"),
    ("perturbations:\n  - {name: a, factor: table_color, rgba: [1, 0, 0]}\n  - {name: a, factor: light_intensity, scale: 0.5}\n",
     r"catalog.yaml:3: perturbation name 'a' is already used at .*catalog.yaml:2"),
    ("perturbations:\n  - {factor: table_color, rgba: [1, 0, 0]}\n", r"catalog.yaml:2: perturbation is missing 'name'"),
    ("perturbations:\n  - {name: a, factor: object_mass}\n",
     r"catalog.yaml:2: perturbation 'a': factor 'object_mass' needs scale \(`robofail perturbations --factors`"),
    ("perturbations: 5\n", r"catalog.yaml:1: 'perturbations' must be a list of entries .*, got '5'"),
    ("perturbation:\n  - {name: a, factor: table_color, rgba: [1, 0, 0]}\n", r"exactly one key, 'perturbations'"),
    ("perturbations: [\n", r"not valid YAML"),
    ("perturbations:\n  - name: a\n    factor: table_color\n    rgba: [1, 0, 0]\n    rgba: [0, 0, 1]\n",
     r"catalog.yaml:2: 'rgba' is given twice \(lines 4 and 5\); keep one of them"),
    ("perturbations:\n  - {name: a, factor: table_color, rgba: [1, 0, 0]}\nperturbations: []\n",
     r"exactly one key, 'perturbations'.*found keys: \['perturbations', 'perturbations'\]"),
    ("perturbations: []\n", r"catalog.yaml: the perturbations list is empty; add entries"),
    # A typo in tasks: would leave the perturbation out of every task without a word.
    ("perturbations:\n  - {name: a, factor: table_color, rgba: [1, 0, 0], tasks: [Lfit]}\n",
     r"catalog.yaml:2: perturbation 'a': tasks: unknown task 'Lfit'. Did you mean 'Lift'"),
    # Parameters of the wrong type are named with what they must be, not with Python's own words.
    ("perturbations:\n  - {name: a, factor: table_color, rgba: red}\n",
     r"catalog.yaml:2: perturbation 'a': table_color.rgba must be a list of 4 numbers, got 'red'"),
    ("perturbations:\n  - {name: a, factor: actuation_latency, steps: two}\n",
     r"actuation_latency.steps must be a number, got 'two'"),
    ("perturbations:\n  - {name: a, factor: actuation_latency, steps: 2.5}\n",
     r"actuation_latency.steps must be a whole number, got 2.5"),
    ("perturbations:\n  - {name: a, factor: camera_fov, fovy: .nan}\n", r"camera_fov.fovy must be a finite number"),
    ("perturbations:\n  - {name: a, factor: table_texture, material: [floorplane]}\n",
     r"table_texture.material must be the name of a material of the scene, got \['floorplane'\]"),
    ("perturbations:\n  - {name: a, factor: light_direction, direction: [0, 0, 0]}\n",
     r"light_direction.direction must be a direction of about unit length \(not zero"),
    ("perturbations:\n  - {name: a, factor: light_direction, direction: [1.0e+200, 0, 0]}\n",
     r"light_direction.direction must be a direction of about unit length .*overflows"),
])
def test_malformed_entries_name_file_line_and_problem(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        Catalog.load(write(tmp_path, body))


def test_a_binary_file_given_as_the_catalog_is_a_clear_error(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="catalog.yaml: not valid YAML"):
        Catalog.load(path)


def test_missing_catalog_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Catalog.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        Catalog.load(tmp_path)


def test_a_catalog_with_nothing_for_the_task_searched_is_a_clear_error(tmp_path):
    path = write(tmp_path, """
        perturbations:
          - {name: red_cube, factor: object_color, rgba: [1, 0, 0], tasks: [Stack]}
    """)
    config = SearchConfig(catalog=str(path), task="Lift")
    with pytest.raises(ConfigError, match="none of its 1 perturbation\\(s\\) applies to task Lift"):
        resolve_catalog(config)
    assert resolve_catalog(config.replace(task="Stack")).names == ["red_cube"]


def test_definitions_are_the_same_on_every_machine():
    """A normalised light direction is part of the definitions that a run, a worker and a recorded
    ground truth are matched by (and of the digest in bench/data's headers, test_bench_data): it
    must not depend on the CPU. np.linalg.norm's last bit does (an AMD EPYC machine gave
    -0.9128709291752769 for side_light), so a run recorded on one machine would be refused on
    another as 'recorded with other perturbation definitions'. These are the values of the
    machines that recorded bench/data's ground truths: plain float arithmetic gives them everywhere."""
    catalog = Catalog.load()
    directions = {name: catalog[name].factor.direction for name in ("side_light", "back_light")}
    assert directions == {"side_light": (-0.9128709291752768, 0.18257418583505536, -0.3651483716701107),
                          "back_light": (0.9578262852211513, 0.0, -0.2873478855663454)}, \
        "if config/perturbations/default.yaml's light directions were edited, record the ground truths again too"


def test_unknown_perturbation_suggests_the_closest_names():
    with pytest.raises(UnknownNameError, match="unknown perturbation 'red_tabel'. Did you mean 'red_table'"):
        Catalog.load()["red_tabel"]


def test_camera_inside_the_table_is_refused_before_anything_runs(tmp_path, lift_scene):
    from robofail_ros.core.scenes import Scene
    path = write(tmp_path, """
        perturbations:
          - {name: camera_in_table, factor: camera_position, offset: [-0.5, 0.0, -0.6]}
    """)
    with pytest.raises(PerturbationError, match="camera_in_table.*inside the table"):
        Scene("Lift", catalog=Catalog.load(path))


def test_a_texture_the_scene_lacks_is_refused_with_the_known_materials(tmp_path):
    from robofail_ros.core.scenes import Scene
    path = write(tmp_path, """
        perturbations:
          - {name: marble_table, factor: table_texture, material: marble}
    """)
    with pytest.raises(UnknownNameError, match="unknown material of task Lift 'marble'.*Known materials of task Lift: .*table_ceramic"):
        Scene("Lift", catalog=Catalog.load(path))
