//! The POSIX `sh` scripts run on the runner, built from fixed text plus single-quoted values.
//! Nothing secret is ever part of a script (scripts are visible in the runner's process list).

/// Single-quote `s` for `sh` (`'` becomes `'\''`).
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `remote_dir` as an sh word: `~/x` becomes `"$HOME"/'x'`, anything else is quoted.
pub(crate) fn dir_word(remote_dir: &str) -> String {
    match remote_dir.strip_prefix("~/") {
        Some("") => "\"$HOME\"".to_owned(),
        Some(rest) => format!("\"$HOME\"/{}", quote(rest)),
        None if remote_dir == "~" => "\"$HOME\"".to_owned(),
        None => quote(remote_dir),
    }
}

/// File name of the shipped binary under `<remote_dir>/bin/<sha256>/`.
pub(crate) const BINARY_NAME: &str = "terraform-provider-hyops";

/// Prints `uname -sm`, the absolute runner directory, and `have`/`need` for the binary whose
/// sha256 is `sha`. Creates the runner directory 0700.
pub(crate) fn probe(remote_dir: &str, sha: &str) -> String {
    format!(
        r#"set -e; umask 077; d={d}; mkdir -p "$d"; chmod 700 "$d"; cd "$d"; uname -sm; pwd -P
b="bin/{sha}/{BINARY_NAME}"
if [ -x "$b" ] && [ "$(sha256sum "$b" | cut -d' ' -f1)" = {sha} ]; then echo have; else echo need; fi"#,
        d = dir_word(remote_dir),
    )
}

/// Reads the binary from stdin into a temp file, verifies its sha256, then renames it into place.
pub(crate) fn upload(remote_dir: &str, sha: &str) -> String {
    format!(
        r#"set -e; umask 077; cd {d}; mkdir -p "bin/{sha}"; t="bin/{sha}/.upload.$$"
trap 'rm -f "$t"' EXIT INT TERM HUP
cat > "$t"; s=$(sha256sum "$t" | cut -d' ' -f1)
if [ "$s" != {sha} ]; then echo "uploaded binary has sha256 $s, expected {sha}" >&2; exit 3; fi
chmod 700 "$t"; mv -f "$t" "bin/{sha}/{BINARY_NAME}"; trap - EXIT; echo shipped"#,
        d = dir_word(remote_dir),
    )
}

/// Runs the operator CLI on the job read from stdin (see [`super::job`]).
pub(crate) fn apply(remote_dir: &str, sha: &str) -> String {
    format!(
        r#"d={d}; cd "$d" || exit 3; exec "$d/bin/{sha}/{BINARY_NAME}" image apply --config - --hold-stdin --runner-dir "$d""#,
        d = dir_word(remote_dir),
    )
}

/// Prints the size of `path` in bytes, or `gone`.
pub(crate) fn size_of(path: &str) -> String {
    format!(
        r#"p={p}; if [ -f "$p" ]; then wc -c < "$p"; else echo gone; fi"#,
        p = quote(path)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_sh() {
        for s in ["plain", "it's", "$(rm -rf /)", "a b\nc", "''"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
        assert_eq!(dir_word("~/.cache/x"), "\"$HOME\"/'.cache/x'");
        assert_eq!(dir_word("/srv/runner"), "'/srv/runner'");
    }
}
