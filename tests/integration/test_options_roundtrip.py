"""Every option of the schema, end to end: words -> control socket -> worker -> status and
JSON -> the words of an ifconfig.agrN file, which then describe agr0 exactly."""

from agrconfig import options
from tests.integration.helpers import aggregate, host_pair, ok, status_json

SAMPLES = {"hash": (1, 4, 7)}   # the hash takes 7 values; three of them say enough


def test_every_option_round_trips(lab, tmp_path):
    a, _b = host_pair(lab, ports=("re0",))
    aggregate(lab, a, ports=("re0",))
    path = tmp_path / "ifconfig.agr0"
    for option in options.OPTIONS:
        values = SAMPLES.get(option.key, option.kind.values())
        for value in (*values, option.default):
            words = option.file_words(value, "re0")
            ok(lab, a, "agr0", *words)
            doc = status_json(lab, a)
            flags = doc["linkinfo"]["info_data"]["flags"]
            port = doc["agrports"][0]["options"]
            assert (port if option.scope == "port" else flags)[option.key] == value, (words, flags, port)
            # The JSON's settings, written back as file words, describe agr0 as it is: a dry
            # run of that file plans nothing. (A port's settings follow its agrport line.)
            lines = ["create", "agrport re0"] + [" ".join(options.file_words(k, v, "re0"))
                                                 for k, v in {**flags, **port}.items()]
            path.write_text("\n".join(lines) + "\n")
            dry = ok(lab, a, "-n", "-f", str(path), "agr0")
            assert dry == "", (words, dry)
    # And a file that leaves an option out sets it back to its default.
    ok(lab, a, "agr0", "lacptimeout", "fast", "link2", "agrportpri", "re0", "9")
    path.write_text("create\nagrport re0\n")
    proc = lab.agr(a, "-n", "-f", str(path), "agr0")
    assert proc.returncode == 3, proc.stderr   # something would change
    dry = proc.stdout.split("\n")
    assert sorted(filter(None, dry)) == ["agrconfig agr0 -link2", "agrconfig agr0 agrportpri re0 32768",
                                         "agrconfig agr0 lacptimeout slow"], dry
