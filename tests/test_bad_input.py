"""Adversarial input (issue 14): every bad value, file or flag fails at once with one line that
names the file, row, field or key; nothing here trains a model or, except where the metric names
are compared with Keras, imports TensorFlow."""

from __future__ import annotations

import pytest

from semmatch_tf import cli
from semmatch_tf.data import DataFormatError, load_dataset
from semmatch_tf.training.config import BI_ENCODER_METRICS, HEAD_METRICS, ConfigError, RunConfig
from semmatch_tf.training.config_files import load_config

HOME_DEPOT_HEADER = "id,product_uid,product_title,search_term,relevance\n"


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def run_cli(capsys, *argv) -> str:
    """Run the CLI in-process; assert exit code 2 and exactly one stderr line, no traceback."""
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"semmatch-tf {argv[0]}: error: ")
    return err.strip()


def config_error(tmp_path, text: str, overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, "config.yaml", text), overrides)
    message = str(error.value)
    assert message.startswith(str(tmp_path / "config.yaml")) and "\n" not in message
    return message


# -- config values that used to validate and train nonsense --------------------------------------
@pytest.mark.parametrize("text, key", [
    ("training: {learning_rate: .inf}", "training.learning_rate"),
    ("training: {learning_rate: -.inf}", "training.learning_rate"),
    ("training: {learning_rate: .nan}", "training.learning_rate"),
    ("training: {clipnorm: .inf}", "training.clipnorm"),
    ("training: {warmup_fraction: .nan}", "training.warmup_fraction"),
    ("model: {bi_encoder: {temperature: .inf}}", "model.bi_encoder.temperature"),
    ("training: {learning_rate: " + "9" * 400 + "}", "training.learning_rate"),  # int beyond a double
])
def test_every_float_field_refuses_nan_and_inf(tmp_path, text, key):
    assert f"{key}: must be a finite number" in config_error(tmp_path, text)


@pytest.mark.parametrize("text, key, bound", [
    ("text: {query_length: 1000000000}", "text.query_length", "[1, 4096]"),
    ("text: {product_length: 4097}", "text.product_length", "[1, 4096]"),
    ("text: {query_length: 1000}\nmodel: {family: bert}", "text.query_length", "at most 512 for the bert family"),
    ("text: {product_length: 513}\nmodel: {family: bert_bi_encoder}", "text.product_length", "at most 512"),
])
def test_sequence_lengths_are_bounded(tmp_path, text, key, bound):
    message = config_error(tmp_path, text)
    assert key in message and bound in message


@pytest.mark.parametrize("buckets, expected", [
    ("[a, b]", "text.length_buckets[0]: expected int, got a str 'a'"),
    ("[8, 2.5]", "text.length_buckets[1]: expected int"),
    ("[-4, 8]", "text.length_buckets: must be positive, strictly increasing"),
    ("[0, 8]", "text.length_buckets: must be positive, strictly increasing"),
    ("[16, 8]", "text.length_buckets: must be positive, strictly increasing"),
])
def test_length_buckets_are_positive_increasing_ints(tmp_path, buckets, expected):
    assert expected in config_error(tmp_path, f"text: {{length_buckets: {buckets}}}")


@pytest.mark.parametrize("weights, expected", [
    ("{0: -1}", "training.class_weights.0: weight must be finite and >= 0, got -1"),
    ("{1: .inf}", "training.class_weights.1: weight must be finite and >= 0"),
    ("{1: .nan}", "training.class_weights.1: weight must be finite and >= 0"),
    ("{0: heavy}", "training.class_weights.0: weight must be a number"),
    ("{a: 1}", "training.class_weights.a: class ids must be integers >= 0"),
    ("{-1: 1}", "training.class_weights.-1: class ids must be integers >= 0"),
    ("{0: 0, 1: 0}", "training.class_weights: needs at least one positive weight"),
])
def test_class_weights_are_finite_non_negative(tmp_path, weights, expected):
    assert expected in config_error(tmp_path, f"training: {{class_weights: {weights}}}")


def test_good_class_weights_still_load(tmp_path):
    config = load_config(write(tmp_path, "c.yaml", "training: {class_weights: {0: 2, 2: 0.5}}"))
    assert config.training.class_weights == {0: 2, 2: 0.5}


@pytest.mark.parametrize("text, monitor", [
    ("training: {monitor: banana}", "banana"),
    ("training: {monitor: val_rmse}", "val_rmse"),  # a regression metric on the classification head
    ("model: {head: regression}\ntraining: {monitor: val_accuracy}", "val_accuracy"),
    ("model: {family: bilstm_bi_encoder, bi_encoder: {loss: cosine_regression}}\n"
     "training: {monitor: val_in_batch_accuracy}", "val_in_batch_accuracy"),
])
def test_monitor_must_be_a_value_the_model_logs(tmp_path, text, monitor):
    assert "training.monitor: must be one of" in config_error(tmp_path, text)


@pytest.mark.parametrize("model, monitor", [
    ({}, "val_accuracy"), ({"head": "regression"}, "val_rmse"), ({}, "loss"),
    ({"family": "bilstm_bi_encoder"}, "val_in_batch_accuracy"),
])
def test_monitor_accepts_what_the_model_logs(model, monitor):
    config = RunConfig.from_dict({"model": model, "training": {"monitor": monitor}})
    assert config.training.monitor == monitor


def test_monitor_table_matches_the_compiled_metrics():
    from semmatch_tf.models.heads import metrics_for
    from semmatch_tf.losses import in_batch_metrics

    for head, names in HEAD_METRICS.items():
        assert tuple(m.name for m in metrics_for(head)) == names, head
    assert tuple(m.name for m in in_batch_metrics()) == BI_ENCODER_METRICS["in_batch_softmax"]


@pytest.mark.parametrize("split, expected", [
    ("[a, b, c]", "data.split[0]: expected float, got a str 'a'"),
    ("[0.5, 0.5]", "data.split: expected 3 values, got 2"),
    ("[0.8, .nan, 0.1]", "data.split[1]: must be a finite number"),
])
def test_data_split_elements_are_checked(tmp_path, split, expected):
    assert expected in config_error(tmp_path, f"data: {{split: {split}}}")


def test_data_options_must_be_loader_options(tmp_path):
    message = config_error(tmp_path, "data: {format: generic, path: x.csv, options: {querry: q}}")
    assert "data.options.querry: unknown option for format 'generic'; it accepts [" in message
    assert "'query'" in message
    assert "data.options.limit: use data.limit" in config_error(
        tmp_path, "data: {format: qbqtc, path: x.json, options: {limit: 3}}")


# -- the CLI: one line instead of a traceback ------------------------------------------------------
def test_cli_directory_as_config(capsys, tmp_path):
    err = run_cli(capsys, "train", "--config", tmp_path, "--output", tmp_path / "run")
    assert err.endswith(f"{tmp_path}: is a directory, not a YAML config file")


def test_cli_latin1_config(capsys, tmp_path):
    path = write(tmp_path, "c.yaml", "data: {format: demo}\n# caf\xe9\n".encode("latin-1"))
    err = run_cli(capsys, "train", "--config", path, "--output", tmp_path / "run")
    assert err.endswith(f"{path}: not UTF-8 text (byte 0xe9 on line 2); save the file as UTF-8")


@pytest.mark.parametrize("text, kind", [("just a string\n", "a str 'just a string'"), ("- 1\n- 2\n", "a list [1, 2]"),
                                        ("42\n", "an int 42")])
def test_cli_config_that_is_not_a_mapping(capsys, tmp_path, text, kind):
    path = write(tmp_path, "c.yaml", text)
    err = run_cli(capsys, "train", "--config", path, "--output", tmp_path / "run")
    assert f"{path}: config: must be a mapping with the sections" in err and err.endswith(f"got {kind}")


@pytest.mark.parametrize("text, problem", [
    ("training: {epochs: [\n", "not valid YAML: expected the node content"),
    ("training: !!python/object/apply:os.system ['true']\n", "could not determine a constructor for the tag"),
])
def test_cli_malformed_yaml_config(capsys, tmp_path, text, problem):
    path = write(tmp_path, "c.yaml", text)
    err = run_cli(capsys, "train", "--config", path, "--output", tmp_path / "run")
    assert f"{path}: " in err and problem in err and "(line " in err


@pytest.mark.parametrize("assignment, expected", [
    ("training.epochs=[1", "--set training.epochs: value '[1' is not plain YAML: expected ',' or ']'"),
    ("training.epochs=!!python/object/apply:os.system ['true']",
     "--set training.epochs: value \"!!python/object/apply:os.system ['true']\" is not plain YAML: could not "
     "determine a constructor"),
    ("training.epochs.x=2", "training.epochs: takes an int value, not keys; cannot set training.epochs.x"),
    ("data.split=[a,b,c]", "data.split[0]: expected float, got a str 'a'"),
    ("training.learning_rate=.inf", "training.learning_rate: must be a finite number, got a float inf"),
    ("training.monitor=val_f1", "training.monitor: must be one of ['loss', 'val_loss', 'val_accuracy'], got 'val_f1'"),
    ("training.class_weights={0: -1}", "training.class_weights.0: weight must be finite and >= 0"),
])
def test_cli_bad_set(capsys, tmp_path, assignment, expected):
    path = write(tmp_path, "c.yaml", "training: {epochs: 3}\n")
    err = run_cli(capsys, "train", "--config", path, "--output", tmp_path / "run", "--set", assignment)
    assert expected in err


def test_cli_set_into_a_key_the_file_does_not_set(capsys, tmp_path):
    path = write(tmp_path, "c.yaml", "training:\n")  # a null section, and no epochs key
    err = run_cli(capsys, "train", "--config", path, "--output", tmp_path / "run", "--set", "training.epochs.x=2")
    assert "training.epochs: takes an int value, not keys" in err


def test_cli_directory_as_evaluate_path(capsys, tmp_path):
    err = run_cli(capsys, "evaluate", "--model", tmp_path / "no-run", "--dataset", "home_depot", "--path", tmp_path)
    assert err.endswith(f"{tmp_path}: is a directory; format 'home_depot' reads one data file")


def test_cli_file_as_evaluate_path_of_a_directory_format(capsys, tmp_path):
    path = write(tmp_path, "label.csv", "id\tquery_id\n")
    err = run_cli(capsys, "evaluate", "--model", tmp_path / "no-run", "--dataset", "wands", "--path", path)
    assert f"{path}: is a file; format 'wands' reads a directory" in err


@pytest.mark.parametrize("option, expected", [
    ("querry=search_term", "--option querry: unknown for dataset format 'generic', which takes the options ["),
    ("limit=3", "--option limit: unknown for dataset format 'generic'"),
])
def test_cli_unknown_evaluate_option(capsys, tmp_path, option, expected):
    path = write(tmp_path, "pairs.csv", "query,product,label\na,b,1\n")
    err = run_cli(capsys, "evaluate", "--model", tmp_path / "no-run", "--dataset", "generic", "--path", path,
                  "--option", option)
    assert expected in err and "'query'" in err and "(and --limit)" in err


def test_cli_evaluate_option_for_a_format_without_options(capsys, tmp_path):
    path = write(tmp_path, "dev.json", '{"query": "a", "title": "b", "label": "1"}\n')
    err = run_cli(capsys, "evaluate", "--model", tmp_path / "no-run", "--dataset", "qbqtc", "--path", path,
                  "--option", "sep=tab")
    assert err.endswith("--option sep: unknown for dataset format 'qbqtc', which takes no options (and --limit)")


def test_cli_directory_as_predict_input(capsys, tmp_path):
    err = run_cli(capsys, "predict", "--model", tmp_path / "no-run", "--input", tmp_path)
    assert err.endswith(f"--input {tmp_path}: is a directory, expected a query<TAB>product file")


def test_cli_latin1_predict_input(capsys, tmp_path):
    path = write(tmp_path, "pairs.tsv", "red shoes\tNike\n".encode() + "caf\xe9\tmug\n".encode("latin-1"))
    err = run_cli(capsys, "predict", "--model", tmp_path / "no-run", "--input", path)
    assert err.endswith(f"{path}, line 2: not UTF-8 text (byte 0xe9)")


def test_cli_keeps_tracebacks_for_real_bugs(monkeypatch, tmp_path):
    """Only input errors become one line: a bug (here a TypeError) still raises."""
    def broken(config, overrides):
        raise TypeError("a bug")

    monkeypatch.setattr("semmatch_tf.training.config_files.load_config", broken)
    with pytest.raises(TypeError, match="a bug"):
        cli.main(["train", "--config", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "run")])


# -- data files: clear, early, named errors --------------------------------------------------------
def data_error(fmt: str, path, **options) -> DataFormatError:
    with pytest.raises(DataFormatError) as error:
        load_dataset(fmt, str(path), **options)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    return error.value


def test_empty_csv_names_the_file(tmp_path):
    path = write(tmp_path, "train.csv", "")
    assert str(data_error("home_depot", path)) == f"{path}: empty file"
    assert str(data_error("generic", write(tmp_path, "blank.csv", "\n  \n"))).endswith("empty file")


def test_header_only_file_is_an_error(tmp_path):
    path = write(tmp_path, "train.csv", HOME_DEPOT_HEADER)
    error = data_error("home_depot", path)
    assert error.row is None and "no data rows (only a header" in str(error)


def test_home_depot_utf8_file_is_read_as_utf8(tmp_path):
    path = write(tmp_path, "train.csv", HOME_DEPOT_HEADER + "1,100001,Café table 90°,café table,3\n")
    dataset = load_dataset("home_depot", str(path))
    assert dataset.frame["product"][0] == "Café table 90°" and dataset.frame["query"][0] == "café table"
    assert dataset.source == {"files": {str(path): "utf-8"}}


def test_home_depot_latin1_file_falls_back_and_says_so(tmp_path):
    path = write(tmp_path, "train.csv", (HOME_DEPOT_HEADER + "1,100001,Café table,café,3\n").encode("latin-1"))
    dataset = load_dataset("home_depot", str(path))
    assert dataset.frame["product"][0] == "Café table" and dataset.source == {"files": {str(path): "latin-1"}}
    assert dataset.head(1).source == dataset.source
    bad = write(tmp_path, "bad.csv", (HOME_DEPOT_HEADER + "1,100001,Café,,3\n").encode("latin-1"))
    error = data_error("home_depot", bad)
    assert str(error) == f"{bad} (read as latin-1), row 1, field 'search_term': empty text"
    assert error.encoding == "latin-1"


@pytest.mark.parametrize("encoding, name", [("utf-16", "UTF-16-LE"), ("utf-16-be", "UTF-16-BE"),
                                            ("utf-32", "UTF-32-LE")])
def test_utf16_and_utf32_files_are_named_not_missing_columns(tmp_path, encoding, name):
    text = "query,product,label\nred shoes,Nike,1\n"
    data = text.encode(encoding) if encoding != "utf-16-be" else b"\xfe\xff" + text.encode(encoding)
    path = write(tmp_path, "pairs.csv", data)
    error = data_error("generic", path)
    assert f"file is {name} (byte-order mark" in str(error) and "convert it" in str(error)
    assert error.encoding == name and error.field is None


def test_utf16_without_a_bom_is_named(tmp_path):
    path = write(tmp_path, "pairs.csv", "query,product,label\na,b,1\n".encode("utf-16-le"))
    assert "NUL bytes in the first 4 KiB: probably UTF-16 or UTF-32" in str(data_error("generic", path))


@pytest.mark.parametrize("line, field, got", [
    ('{"query": 123, "title": "b", "label": "1"}', "query", "expected text, got int 123"),
    ('{"query": "a", "title": ["b", "c"], "label": "1"}', "title", "expected text, got list ['b', 'c']"),
    ('{"query": "a", "title": {"x": 1}, "label": "1"}', "title", "expected text, got dict"),
    ('{"query": true, "title": "b", "label": "1"}', "query", "expected text, got bool True"),
])
def test_jsonl_non_text_values_are_refused(tmp_path, line, field, got):
    path = write(tmp_path, "dev.json", '{"query": "ok", "title": "fine", "label": "0"}\n\n' + line + "\n")
    error = data_error("qbqtc", path)
    assert (error.row, error.field) == (3, field), "the row is the line number, blank lines counted"
    assert got in str(error)


@pytest.mark.parametrize("label", ["[1]", "true", '"high"'])
def test_jsonl_non_numeric_grade_is_named(tmp_path, label):
    path = write(tmp_path, "valid.json", f'{{"sentence1": "a", "sentence2": "b", "label": {label}}}\n')
    error = data_error("jsts", path)
    assert (error.row, error.field) == (1, "label") and "is not a number in [0.0, 5.0]" in str(error)


def test_empty_product_uid_is_refused(tmp_path):
    path = write(tmp_path, "train.csv", HOME_DEPOT_HEADER + "1,100001,Table,table,3\n2, ,Chair,chair,2\n")
    error = data_error("home_depot", path)
    assert (error.row, error.field) == (2, "product_uid") and str(error).endswith("empty id")


def test_generic_ids_must_be_ids(tmp_path):
    path = write(tmp_path, "pairs.jsonl",
                 '{"q": "a", "p": "b", "l": 1, "pid": 7}\n{"q": "c", "p": "d", "l": 0, "pid": [7]}\n')
    error = data_error("generic", path, query="q", product="p", label="l", product_id="pid")
    assert (error.row, error.field) == (2, "pid") and "expected an id (text or integer), got list [7]" in str(error)
    good = write(tmp_path, "good.jsonl", '{"q": "a", "p": "b", "l": 1, "pid": 7}\n')
    assert load_dataset("generic", str(good), query="q", product="p", label="l", product_id="pid",
                        language="en").frame["product_id"].tolist() == ["7"]


def test_directory_as_a_data_file(tmp_path):
    assert str(data_error("qbqtc", tmp_path)).endswith("is a directory; format 'qbqtc' reads one data file")
    from semmatch_tf.data.loaders import load_lcqmc

    with pytest.raises(DataFormatError, match="is a directory, expected a file"):
        load_lcqmc(tmp_path)  # the reader itself, without load_dataset's check


def test_unknown_loader_option_names_the_accepted_ones(tmp_path):
    path = write(tmp_path, "dev.json", '{"query": "a", "title": "b", "label": "1"}\n')
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['sep'\] for dataset format 'qbqtc'; "
                                         r"it accepts \['limit'\]"):
        load_dataset("qbqtc", str(path), sep=",")


def test_malformed_csv_is_one_line(tmp_path):
    path = write(tmp_path, "pairs.csv", "query,product,label\na,b,1\nc,d,1,extra\n")
    message = str(data_error("generic", path))
    assert "malformed CSV: Error tokenizing data" in message


def test_stsb_file_name_without_language(tmp_path):
    path = write(tmp_path, "dev.csv", "a,b,1.0\n")
    assert "cannot tell the language from the file name" in str(data_error("stsb_multi_mt", path))
