//! The `rpcs serve` config file: which programs are served under which names,
//! checked entirely at start, so a mistake shows then and not at a call.

use super::param::{Arg, Param, ParamType};
use super::template::{ElementFile, Template};
use crate::serving::{seconds, ServerFile};
use anyhow::{bail, ensure, Context as _};
use rpcs_core::Access;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variables a program gets from `rpcs serve`'s own environment
/// unless the method's `inherit_env` names more; everything else is cleared.
pub const INHERITED_ENV: [&str; 7] = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

/// Default seconds a program may run.
const DEFAULT_TIMEOUT: f64 = 30.0;
/// Default seconds between SIGTERM and SIGKILL.
const DEFAULT_KILL_GRACE: f64 = 2.0;
/// Default bytes kept of each of standard output and standard error.
const DEFAULT_MAX_OUTPUT: usize = 1 << 20;
/// Default programs running at once over all methods.
pub const DEFAULT_MAX_CONCURRENT: usize = 16;

/// The whole file: server keys (as `rpcs master` has them), the global
/// concurrency limit, defaults for every method, and the methods.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    #[serde(flatten)]
    pub server: ServerFile,
    /// Programs running at once over all methods.
    pub max_concurrent: Option<usize>,
    #[serde(default)]
    pub defaults: MethodKeys,
    #[serde(default, rename = "method")]
    pub methods: Vec<MethodFile>,
}

/// What a method may set and `[defaults]` sets for all.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct MethodKeys {
    cwd: Option<PathBuf>,
    env: Option<BTreeMap<String, String>>,
    inherit_env: Option<Vec<String>>,
    timeout: Option<f64>,
    kill_grace: Option<f64>,
    max_output: Option<usize>,
    output_overflow: Option<Overflow>,
    max_concurrent: Option<usize>,
    fail_on_exit: Option<bool>,
    access: Option<String>,
}

/// One `[[method]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodFile {
    name: String,
    #[serde(default)]
    doc: String,
    program: PathBuf,
    #[serde(default)]
    args: Vec<ElementFile>,
    #[serde(default)]
    params: Vec<ParamFile>,
    stdin: Option<String>,
    #[serde(default)]
    stream: bool,
    #[serde(flatten)]
    keys: MethodKeys,
}

/// One declared parameter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamFile {
    name: String,
    #[serde(rename = "type", default)]
    ty: ParamType,
    #[serde(default)]
    optional: bool,
    default: Option<toml::Value>,
    #[serde(default)]
    allow_dash: bool,
}

/// What happens when a program writes more than `max_output` bytes to a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Keep the first `max_output` bytes, discard the rest, let the program
    /// finish, and say `truncated` in the result (the default).
    #[default]
    Truncate,
    /// Kill the program and answer an `OutputTooLarge` fault.
    Kill,
}

/// A served method, checked and resolved.
#[derive(Debug, Clone)]
pub struct MethodDef {
    pub name: String,
    pub doc: String,
    /// The executable, resolved at start.
    pub program: PathBuf,
    pub template: Template,
    pub params: Vec<Param>,
    /// The parameter fed to standard input.
    pub stdin: Option<usize>,
    pub cwd: PathBuf,
    /// The program's whole environment.
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    pub kill_grace: Duration,
    pub max_output: usize,
    pub overflow: Overflow,
    pub max_concurrent: usize,
    pub fail_on_exit: bool,
    /// Standard output line by line.
    pub stream: bool,
    pub access: Access,
}

impl ServeFile {
    /// Checks every method; `base` is the config file's directory, against
    /// which relative `program` paths (with a `/`) and `cwd`s are resolved.
    pub fn methods(&self, base: &Path) -> anyhow::Result<Vec<MethodDef>> {
        let mut names = HashSet::new();
        let mut defs = Vec::new();
        for m in &self.methods {
            ensure!(
                names.insert(m.name.as_str()),
                "method {:?} is defined twice",
                m.name
            );
            let def = m
                .resolve(&self.defaults, base)
                .with_context(|| format!("method {:?}", m.name))?;
            defs.push(def);
        }
        Ok(defs)
    }
}

/// Names `rpcs serve` cannot give a program: the built-ins and the
/// authentication call.
fn reserved(name: &str) -> bool {
    name.starts_with("system.")
        || name.starts_with("rpc.")
        || name.starts_with("_zerorpc")
        || name == "auth"
}

fn plain_name(name: &str, extra: &[char]) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
}

impl MethodFile {
    fn resolve(&self, defaults: &MethodKeys, base: &Path) -> anyhow::Result<MethodDef> {
        ensure!(
            plain_name(&self.name, &['.', '-']),
            "a method name is letters, digits, '_', '.' and '-', starting with a letter or '_'"
        );
        ensure!(!reserved(&self.name), "the name is reserved for the server");
        let keys = &self.keys;
        let params = self.params()?;
        let stdin = match &self.stdin {
            Some(name) => Some(
                (params.iter().position(|p| &p.name == name))
                    .with_context(|| format!("stdin names no parameter: {name:?}"))?,
            ),
            None => None,
        };
        for (i, p) in params.iter().enumerate() {
            ensure!(
                p.ty != ParamType::Bytes || stdin == Some(i),
                "parameter {:?}: only the stdin parameter can be bytes",
                p.name
            );
            ensure!(
                stdin != Some(i) || matches!(p.ty, ParamType::String | ParamType::Bytes),
                "parameter {:?}: the stdin parameter is a string or bytes",
                p.name
            );
        }
        let template = Template::parse(&self.args, &params, self.stdin.as_deref())?;
        if let Some(unused) = (0..params.len()).find(|&i| stdin != Some(i) && !template.uses(i)) {
            bail!(
                "parameter {:?} appears neither in args nor as stdin",
                params[unused].name
            );
        }
        let cwd = match keys.cwd.as_ref().or(defaults.cwd.as_ref()) {
            Some(dir) => base.join(dir),
            None => std::env::current_dir().context("the current directory")?,
        };
        ensure!(cwd.is_dir(), "cwd {} is not a directory", cwd.display());
        let timeout = keys.timeout.or(defaults.timeout).unwrap_or(DEFAULT_TIMEOUT);
        let kill_grace = keys
            .kill_grace
            .or(defaults.kill_grace)
            .unwrap_or(DEFAULT_KILL_GRACE);
        let max_output = keys
            .max_output
            .or(defaults.max_output)
            .unwrap_or(DEFAULT_MAX_OUTPUT);
        ensure!(max_output > 0, "max_output must be at least 1");
        let max_concurrent = keys
            .max_concurrent
            .or(defaults.max_concurrent)
            .unwrap_or(usize::MAX);
        ensure!(max_concurrent > 0, "max_concurrent must be at least 1");
        let access = match keys.access.as_ref().or(defaults.access.as_ref()) {
            Some(level) => level.parse::<Access>()?,
            // Running a program acts: write, as for the master's changes.
            None => Access::Write,
        };
        Ok(MethodDef {
            name: self.name.clone(),
            doc: self.doc.clone(),
            program: find_program(&self.program, base)?,
            template,
            params,
            stdin,
            env: environment(keys, defaults)?,
            cwd,
            timeout: seconds("timeout", timeout)?,
            kill_grace: seconds("kill_grace", kill_grace)?,
            max_output,
            overflow: keys
                .output_overflow
                .or(defaults.output_overflow)
                .unwrap_or_default(),
            max_concurrent,
            fail_on_exit: keys.fail_on_exit.or(defaults.fail_on_exit).unwrap_or(false),
            stream: self.stream,
            access,
        })
    }

    fn params(&self) -> anyhow::Result<Vec<Param>> {
        let mut params: Vec<Param> = Vec::new();
        for p in &self.params {
            ensure!(
                plain_name(&p.name, &[]),
                "parameter {:?}: a name is letters, digits and '_', starting with a letter or '_'",
                p.name
            );
            ensure!(
                params.iter().all(|q| q.name != p.name),
                "parameter {:?} is declared twice",
                p.name
            );
            let default = match &p.default {
                Some(value) => Some(
                    default_arg(p.ty, value)
                        .with_context(|| format!("parameter {:?}: default", p.name))?,
                ),
                None => None,
            };
            let optional = p.optional || default.is_some();
            // Positional calls fill parameters in order, so only a tail can be left out.
            ensure!(
                optional || params.iter().all(|q| !q.optional),
                "parameter {:?} is required but follows an optional one",
                p.name
            );
            params.push(Param {
                name: p.name.clone(),
                ty: p.ty,
                optional,
                default,
                allow_dash: p.allow_dash,
            });
        }
        Ok(params)
    }
}

/// A default value, checked against the parameter's type.
fn default_arg(ty: ParamType, value: &toml::Value) -> anyhow::Result<Arg> {
    let text = |s: &str| {
        ensure!(!s.contains('\0'), "contains a NUL character");
        Ok(s.to_owned())
    };
    Ok(match (ty, value) {
        (ParamType::String, toml::Value::String(s)) => Arg::Text(text(s)?),
        (ParamType::Integer, toml::Value::Integer(i)) => Arg::Text(i.to_string()),
        (ParamType::Boolean, toml::Value::Boolean(b)) => Arg::Flag(*b),
        (ParamType::Bytes, toml::Value::String(s)) => Arg::Bytes(s.clone().into_bytes()),
        (ParamType::List, toml::Value::Array(items)) => Arg::List(
            items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => text(s),
                    other => bail!("list items are strings, not {}", other.type_str()),
                })
                .collect::<anyhow::Result<_>>()?,
        ),
        (ty, other) => bail!(
            "a {ty:?} parameter cannot default to a {}",
            other.type_str()
        ),
    })
}

/// The program's environment: the inherited names that are set, then the
/// method's `env` (over `[defaults]`'s).
fn environment(
    keys: &MethodKeys,
    defaults: &MethodKeys,
) -> anyhow::Result<Vec<(OsString, OsString)>> {
    let mut env: BTreeMap<OsString, OsString> = BTreeMap::new();
    let inherit = (INHERITED_ENV.iter().map(|s| s.to_string()))
        .chain(defaults.inherit_env.iter().flatten().cloned())
        .chain(keys.inherit_env.iter().flatten().cloned());
    for name in inherit {
        ensure!(
            !name.is_empty() && !name.contains(['=', '\0']),
            "inherit_env: {name:?} is not a variable name"
        );
        if let Some(value) = std::env::var_os(&name) {
            env.insert(name.into(), value);
        }
    }
    let set = (defaults.env.iter().flatten()).chain(keys.env.iter().flatten());
    for (name, value) in set {
        ensure!(
            !name.is_empty() && !name.contains(['=', '\0']),
            "env: {name:?} is not a variable name"
        );
        ensure!(!value.contains('\0'), "env: {name}'s value contains NUL");
        env.insert(name.into(), value.into());
    }
    Ok(env.into_iter().collect())
}

/// The executable `program` names: a path (relative ones against `base`), or
/// a bare name looked up in `PATH` now. It must exist and be executable.
fn find_program(program: &Path, base: &Path) -> anyhow::Result<PathBuf> {
    let text = program.as_os_str().as_encoded_bytes();
    ensure!(!text.is_empty(), "program is empty");
    let path = if text.contains(&b'/') {
        base.join(program)
    } else {
        let dirs = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&dirs)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
            .with_context(|| format!("program {:?} is not in PATH", program.display()))?
    };
    ensure!(
        is_executable(&path),
        "program {} is not an executable file",
        path.display()
    );
    Ok(path)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    // access() alone would pass any file for root.
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {}
        _ => return false,
    }
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access only reads the NUL-terminated path it is given.
    unsafe { libc::access(c_path.as_ptr(), libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> anyhow::Result<Vec<MethodDef>> {
        let file: ServeFile = toml::from_str(text)?;
        file.methods(Path::new("/"))
    }

    #[test]
    fn a_method_loads_with_defaults_and_overrides() {
        let defs = load(
            r#"
            listen = ["127.0.0.1:0"]
            max_concurrent = 4
            [defaults]
            timeout = 5
            env = { A = "1", B = "2" }
            [[method]]
            name = "files.list"
            doc = "List a directory."
            program = "ls"
            args = ["-l", "--", "{dir}", { if = "all", args = ["-a"] }]
            params = [{ name = "dir", default = "." }, { name = "all", type = "boolean", optional = true }]
            env = { B = "3" }
            max_output = 10
            access = "read"
            "#,
        )
        .unwrap();
        let d = &defs[0];
        assert_eq!(d.name, "files.list");
        assert!(d.program.is_absolute() && d.program.ends_with("ls"));
        assert_eq!(d.timeout, Duration::from_secs(5));
        assert_eq!(d.kill_grace, Duration::from_secs(2));
        assert_eq!((d.max_output, d.overflow), (10, Overflow::Truncate));
        assert_eq!(d.access, Access::Read);
        assert!(d.params.iter().all(|p| p.optional));
        let env: BTreeMap<_, _> = d.env.iter().cloned().collect();
        assert_eq!(env.get(&OsString::from("A")), Some(&"1".into()));
        assert_eq!(env.get(&OsString::from("B")), Some(&"3".into()));
        assert!(env
            .keys()
            .all(|k| k == "A" || k == "B" || INHERITED_ENV.contains(&k.to_str().unwrap())));
    }

    #[test]
    fn mistakes_are_reported_at_load() {
        let method = |body: &str| format!("[[method]]\nname = \"m\"\n{body}");
        let fails = |text: &str, needle: &str| {
            let message = format!("{:#}", load(text).unwrap_err());
            assert!(message.contains(needle), "{message} lacks {needle:?}");
        };
        fails(&method("program = \"/nonexistent/x\""), "not an executable");
        fails(&method("program = \"no-such-program-here\""), "not in PATH");
        fails(&method("program = \"/etc/passwd\""), "not an executable");
        fails(&method("program = \"ls\"\ncolour = 1"), "unknown field");
        fails(
            &method("program = \"ls\"\nparams = [{ name = \"x\" }]"),
            "neither in args",
        );
        fails(
            &method(
                "program = \"ls\"\nargs = [\"{x}\"]\nparams = [{ name = \"x\", type = \"float\" }]",
            ),
            "unknown variant",
        );
        fails(
            &method("program = \"ls\"\nargs = [\"{a}\", \"{b}\"]\nparams = [{ name = \"a\", optional = true }, { name = \"b\" }]"),
            "follows an optional one",
        );
        fails(
            &method("program = \"ls\"\nargs = [\"{a}\"]\nparams = [{ name = \"a\", type = \"integer\", default = \"x\" }]"),
            "cannot default",
        );
        fails(
            &method("program = \"ls\"\nstdin = \"in\""),
            "stdin names no parameter",
        );
        fails(
            &method("program = \"ls\"\ncwd = \"/nonexistent\""),
            "not a directory",
        );
        fails(&method("program = \"ls\"\ntimeout = 0"), "positive number");
        fails(
            &method("program = \"ls\"\naccess = \"root\""),
            "unknown access level",
        );
        fails(
            "[[method]]\nname = \"system.x\"\nprogram = \"ls\"",
            "reserved",
        );
        fails(
            "[[method]]\nname = \"a b\"\nprogram = \"ls\"",
            "a method name",
        );
        fails(
            "[[method]]\nname = \"m\"\nprogram = \"ls\"\n[[method]]\nname = \"m\"\nprogram = \"ls\"",
            "defined twice",
        );
        fails(
            &method("program = \"ls\"\nenv = { \"A=B\" = \"x\" }"),
            "not a variable name",
        );
        fails(
            &method("program = \"ls\"\ninherit_env = [\"A=B\"]"),
            "not a variable name",
        );
    }
}
