import pytest

from minigpt_cli.settings import SampleSettings, SettingsError, resolve


def test_defaults():
    s = resolve(SampleSettings, "sample", {})
    assert s.temperature == 1.0 and s.top_k is None and s.device == "auto"


def test_precedence_flag_over_file_over_env(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('device = "cpu"\n[sample]\ntemperature = 0.5\ntop_k = 7\n')
    monkeypatch.setenv("MINIGPT_TOP_K", "3")
    monkeypatch.setenv("MINIGPT_SEED", "99")
    monkeypatch.setenv("MINIGPT_TEMPERATURE", "0.9")
    s = resolve(SampleSettings, "sample", {"temperature": 0.1, "top_k": None}, cfg)
    assert s.temperature == 0.1  # flag beats file and env
    assert s.top_k == 7  # file beats env
    assert s.seed == 99  # env beats default
    assert s.device == "cpu"  # top-level key applies to every command having it


def test_every_invalid_value_reported_at_once_naming_its_source(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[sample]\ntop_p = 1.5\ntopk = 3\n")
    monkeypatch.setenv("MINIGPT_NUM_SAMPLES", "zero")
    with pytest.raises(SettingsError) as e:
        resolve(SampleSettings, "sample", {"temperature": -1.0, "device": "gpu"}, cfg)
    msg = str(e.value)
    assert "5 invalid settings" in msg
    assert "--temperature" in msg and "--device" in msg
    assert f"{cfg} key 'sample.top_p'" in msg
    assert "sample.topk" in msg and "unknown setting" in msg
    assert "environment variable MINIGPT_NUM_SAMPLES" in msg


def test_conflicting_flags():
    with pytest.raises(SettingsError, match="not both"):
        resolve(SampleSettings, "sample", {"prompt": "a", "prompt_file": "b.txt"})


def test_bad_config_file(tmp_path):
    with pytest.raises(SettingsError.__mro__[1], match="does not exist"):
        resolve(SampleSettings, "sample", {}, tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("temperature = = 1")
    with pytest.raises(SettingsError.__mro__[1], match="not valid TOML"):
        resolve(SampleSettings, "sample", {}, bad)


def test_environment_layer_decodes_structured_values_and_names_bad_ones(tmp_path, monkeypatch):
    """MINIGPT_<NAME> in any case; lists and dicts as JSON; a bad value names its variable.
    A settings class built directly takes only what it is given."""
    from minigpt_cli.sharding.config import ShardSettings

    monkeypatch.setenv("MINIGPT_INPUTS", '["a.txt", "b.txt"]')
    monkeypatch.setenv("minigpt_options", '{"split": "line"}')
    monkeypatch.setenv("MINIGPT_SHARD_SIZE", "5000")
    s = resolve(ShardSettings, "shard", {"source": "text", "out": tmp_path})
    assert s.inputs == ["a.txt", "b.txt"] and s.options == {"split": "line"}
    assert s.shard_size == 5000
    assert ShardSettings(source="text", out=tmp_path).shard_size != 5000
    monkeypatch.setenv("MINIGPT_STAGES", "not json")
    monkeypatch.setenv("MINIGPT_WORKERS", "-1")
    with pytest.raises(SettingsError) as e:
        resolve(ShardSettings, "shard", {"source": "text", "out": tmp_path})
    msg = str(e.value)
    assert "2 invalid settings" in msg
    assert "environment variable MINIGPT_STAGES" in msg
    assert "environment variable MINIGPT_WORKERS" in msg


def test_unknown_top_level_keys_and_tables_suggest_the_closest_name(tmp_path):
    """A misspelt table or top-level key is an error (it used to be ignored, exit 0), reported
    with every other problem, each with the closest valid name."""
    from typer.testing import CliRunner

    from minigpt_cli.cli import app

    cfg = tmp_path / "c.toml"
    cfg.write_text('temprature = 0.5\ndevice = "cpu"\nlr = 1e-3\n[samp]\ntop_k = 3\n'
                   '[sample]\ntopk = 4\n[pretrain]\nmax_steps = 5\n')
    r = CliRunner().invoke(app, ["sample", "--config", str(cfg), "--temperature", "inf"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and r.exception is None or isinstance(r.exception, SystemExit)
    assert "4 invalid settings for `minigpt sample`" in out, out
    assert f"{cfg} key 'temprature': no command has this setting; did you mean " \
           "'temperature'?" in out
    assert f"{cfg} table [samp]: no command has this table; did you mean [sample]?" in out
    assert f"{cfg} key 'sample.topk': unknown setting; did you mean 'top_k'?" in out
    assert "--temperature: must be a finite number (not inf or nan) (got inf)" in out
    # lr is pretrain's, [pretrain] is another command's table: both fine for `sample`
    assert "'lr'" not in out and "[pretrain]" not in out.split("(tables:")[0]


def test_a_command_name_must_be_a_table(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('sample = 3\n')
    with pytest.raises(SettingsError, match=r"key 'sample': must be a table \(\[sample\]\)"):
        resolve(SampleSettings, "sample", {}, cfg)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_non_finite_numbers_are_refused_from_every_source(value, tmp_path, monkeypatch):
    with pytest.raises(SettingsError, match=r"--temperature: must be a finite number"):
        resolve(SampleSettings, "sample", {"temperature": float(value)})
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[sample]\ntop_p = {value}\n")
    monkeypatch.setenv("MINIGPT_TEMPERATURE", value)
    with pytest.raises(SettingsError) as e:
        resolve(SampleSettings, "sample", {}, cfg)
    assert f"{cfg} key 'sample.top_p': must be a finite number" in str(e.value)
    assert "environment variable MINIGPT_TEMPERATURE: must be a finite number" in str(e.value)


def test_non_finite_plugin_options_are_refused(tmp_path):
    from minigpt_cli.stages.language import LanguageFilter

    with pytest.raises(Exception, match="finite number"):
        LanguageFilter.Options(min_score=float("nan"))


def test_example_configs_have_no_unknown_keys_or_tables():
    from conftest import ROOT

    from minigpt_cli.settings import (
        COMMAND_SETTINGS,
        config_problems,
        load_config_file,
        settings_class,
    )

    # benchmarks/bench_math.py's format, not a --config
    bench_configs = {"math-goal.toml", "calculator-bench.toml"}
    for path in sorted((ROOT / "examples").glob("*.toml")):
        if path.name in bench_configs:
            continue
        data = load_config_file(path)
        for command in [c for c in COMMAND_SETTINGS if c in data] or ["sample"]:
            assert config_problems(settings_class(command), command, data, path) == [], path
