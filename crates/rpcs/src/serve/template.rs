//! Argument templates: the argument vector of a served program, built from
//! literal text and the caller's parameters without any shell.
//!
//! Each element of `args` becomes at most one argument, except `{name...}`,
//! which spreads a list parameter as one argument per item. `{name}` inside an
//! element is replaced by the parameter's value, so a value never splits into
//! several arguments whatever it holds (spaces, quotes, `;`, `$(...)`).
//! `{{` and `}}` stand for literal braces. A group `{ if = "name", args = [...] }`
//! is included only when the parameter is given (and not `false` or an empty
//! list); an optional parameter without a default may appear only inside a
//! group on itself, so no argument is ever built from a missing value.
//!
//! Option injection: a value that would begin an argument with `-` is refused,
//! unless the parameter says `allow_dash = true` or the argument comes after a
//! literal `--` element (where programs stop reading options).

use super::param::{Arg, Param, ParamType};
use rpcs_core::Fault;
use serde::Deserialize;

/// One element of `args` as the config file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ElementFile {
    /// Text with `{name}` placeholders, or `{name...}` alone.
    Text(String),
    /// Elements included only when a parameter is set.
    Group {
        /// The parameter tested.
        #[serde(rename = "if")]
        when: String,
        /// The elements included.
        args: Vec<ElementFile>,
    },
}

/// A piece of one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Param(usize),
}

/// One parsed element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Element {
    /// One argument made of text and parameter values.
    Arg(Vec<Piece>),
    /// A list parameter, one argument per item.
    Spread(usize),
    /// Included when the parameter is set.
    Group(usize, Vec<Element>),
}

/// A parsed, checked template.
#[derive(Debug, Clone)]
pub struct Template {
    elements: Vec<Element>,
}

/// Why a template does not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("args element {0:?}: unknown parameter {1:?}")]
    UnknownParam(String, String),
    #[error("args element {0:?}: a '{{' or '}}' without its pair (write {{{{ and }}}} for literal braces)")]
    Brace(String),
    #[error("args element {0:?}: {{{1}...}} must be the whole element")]
    SpreadNotAlone(String, String),
    #[error("args element {0:?}: only a list parameter can be spread with {{{1}...}}")]
    SpreadNotList(String, String),
    #[error("args element {0:?}: the list parameter {1:?} must be spread as {{{1}...}}")]
    ListNotSpread(String, String),
    #[error("args element {0:?}: {1:?} is the standard input parameter and cannot be an argument")]
    StdinInArgs(String, String),
    #[error("args element {0:?}: the optional parameter {1:?} has no default, so it may appear only inside an {{ if = {1:?} }} group")]
    Unguarded(String, String),
    #[error("args element {0:?}: contains a NUL character")]
    Nul(String),
    #[error("args group on {0:?}: unknown parameter")]
    UnknownGroup(String),
}

impl Template {
    /// Parses `args` against the declared parameters; `stdin` names the
    /// parameter fed to standard input, which no argument may use.
    pub fn parse(
        args: &[ElementFile],
        params: &[Param],
        stdin: Option<&str>,
    ) -> Result<Template, TemplateError> {
        let parser = Parser { params, stdin };
        let elements = parser.elements(args, &[])?;
        Ok(Template { elements })
    }

    /// The parameters the template uses (in arguments or group tests).
    pub fn uses(&self, index: usize) -> bool {
        fn walk(elements: &[Element], index: usize) -> bool {
            elements.iter().any(|e| match e {
                Element::Arg(pieces) => pieces.contains(&Piece::Param(index)),
                Element::Spread(i) => *i == index,
                Element::Group(i, inner) => *i == index || walk(inner, index),
            })
        }
        walk(&self.elements, index)
    }

    /// The argument vector for checked arguments (one per declared parameter,
    /// `None` for a left-out one), refusing values that would inject options.
    pub fn build(&self, params: &[Param], args: &[Option<Arg>]) -> Result<Vec<String>, Fault> {
        let mut builder = Builder {
            params,
            args,
            argv: Vec::new(),
            after_dashes: false,
        };
        builder.elements(&self.elements)?;
        Ok(builder.argv)
    }
}

struct Parser<'a> {
    params: &'a [Param],
    stdin: Option<&'a str>,
}

impl Parser<'_> {
    /// `guards` are the parameters the enclosing groups test.
    fn elements(
        &self,
        args: &[ElementFile],
        guards: &[usize],
    ) -> Result<Vec<Element>, TemplateError> {
        args.iter()
            .map(|element| match element {
                ElementFile::Text(text) => self.text(text, guards),
                ElementFile::Group { when, args } => {
                    let index = (self.params.iter().position(|p| &p.name == when))
                        .ok_or_else(|| TemplateError::UnknownGroup(when.clone()))?;
                    let guards: Vec<usize> = guards.iter().copied().chain([index]).collect();
                    Ok(Element::Group(index, self.elements(args, &guards)?))
                }
            })
            .collect()
    }

    fn param(&self, text: &str, name: &str, guards: &[usize]) -> Result<usize, TemplateError> {
        let err = |f: fn(String, String) -> TemplateError| f(text.to_owned(), name.to_owned());
        let index = (self.params.iter().position(|p| p.name == name))
            .ok_or_else(|| err(TemplateError::UnknownParam))?;
        let param = &self.params[index];
        if self.stdin == Some(name) {
            return Err(err(TemplateError::StdinInArgs));
        }
        if param.optional && param.default.is_none() && !guards.contains(&index) {
            return Err(err(TemplateError::Unguarded));
        }
        Ok(index)
    }

    fn text(&self, text: &str, guards: &[usize]) -> Result<Element, TemplateError> {
        if text.contains('\0') {
            return Err(TemplateError::Nul(text.to_owned()));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let tail = &rest[at..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                literal.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            let Some(end) = tail.find('}').filter(|_| tail.starts_with('{')) else {
                return Err(TemplateError::Brace(text.to_owned()));
            };
            let name = &tail[1..end];
            if name.contains('{') {
                return Err(TemplateError::Brace(text.to_owned()));
            }
            if let Some(list) = name.strip_suffix("...") {
                let index = self.param(text, list, guards)?;
                if self.params[index].ty != ParamType::List {
                    return Err(TemplateError::SpreadNotList(text.into(), list.into()));
                }
                if tail.len() != end + 1 || !pieces.is_empty() || !literal.is_empty() {
                    return Err(TemplateError::SpreadNotAlone(text.into(), list.into()));
                }
                return Ok(Element::Spread(index));
            }
            let index = self.param(text, name, guards)?;
            if self.params[index].ty == ParamType::List {
                return Err(TemplateError::ListNotSpread(text.into(), name.into()));
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Param(index));
            rest = &tail[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() || pieces.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Element::Arg(pieces))
    }
}

struct Builder<'a> {
    params: &'a [Param],
    args: &'a [Option<Arg>],
    argv: Vec<String>,
    /// A literal `--` came before: the program reads no more options.
    after_dashes: bool,
}

impl Builder<'_> {
    fn elements(&mut self, elements: &[Element]) -> Result<(), Fault> {
        for element in elements {
            match element {
                Element::Arg(pieces) => {
                    let arg = self.arg(pieces)?;
                    if let [Piece::Text(t)] = pieces.as_slice() {
                        self.after_dashes |= t == "--";
                    }
                    self.argv.push(arg);
                }
                Element::Spread(index) => {
                    if let Some(Arg::List(items)) = &self.args[*index] {
                        for item in items {
                            self.check_dash(*index, item)?;
                            self.argv.push(item.clone());
                        }
                    }
                }
                Element::Group(index, inner) => {
                    if self.args[*index].as_ref().is_some_and(Arg::is_set) {
                        self.elements(inner)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn arg(&self, pieces: &[Piece]) -> Result<String, Fault> {
        let mut arg = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => arg.push_str(t),
                Piece::Param(index) => {
                    let value = match &self.args[*index] {
                        Some(Arg::Text(s)) => s.as_str(),
                        Some(Arg::Flag(b)) => {
                            if *b {
                                "true"
                            } else {
                                "false"
                            }
                        }
                        // The parser lets through neither lists nor stdin, and
                        // a missing value only inside its own group.
                        Some(Arg::List(_) | Arg::Bytes(_)) | None => {
                            return Err(Fault::internal("argument template out of step"));
                        }
                    };
                    // What begins the argument decides whether it reads as an
                    // option; a value after other text cannot.
                    if arg.is_empty() {
                        self.check_dash(*index, value)?;
                    }
                    arg.push_str(value);
                }
            }
        }
        Ok(arg)
    }

    fn check_dash(&self, index: usize, value: &str) -> Result<(), Fault> {
        let param = &self.params[index];
        if value.starts_with('-') && !param.allow_dash && !self.after_dashes {
            return Err(param.refuse(format_args!(
                "may not start with '-' ({value:?} would be read as an option)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, ty: ParamType) -> Param {
        Param {
            name: name.into(),
            ty,
            optional: false,
            default: None,
            allow_dash: false,
        }
    }

    fn params() -> Vec<Param> {
        let mut limit = p("limit", ParamType::Integer);
        limit.optional = true;
        let mut verbose = p("verbose", ParamType::Boolean);
        verbose.optional = true;
        verbose.default = Some(Arg::Flag(false));
        vec![
            p("pattern", ParamType::String),
            p("files", ParamType::List),
            limit,
            verbose,
            p("input", ParamType::Bytes),
        ]
    }

    fn t(s: &str) -> ElementFile {
        ElementFile::Text(s.into())
    }

    fn group(when: &str, args: &[&str]) -> ElementFile {
        ElementFile::Group {
            when: when.into(),
            args: args.iter().map(|a| t(a)).collect(),
        }
    }

    fn template(args: &[ElementFile]) -> Result<Template, TemplateError> {
        Template::parse(args, &params(), Some("input"))
    }

    fn text(s: &str) -> Option<Arg> {
        Some(Arg::Text(s.into()))
    }

    fn list(items: &[&str]) -> Option<Arg> {
        Some(Arg::List(items.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn placeholders_fill_one_argument_each() {
        let tpl = template(&[
            t("-n"),
            t("--regexp={pattern}"),
            t("{{literal}}"),
            t("{pattern}.{pattern}"),
            group("limit", &["--max-count", "{limit}"]),
            group("verbose", &["-v"]),
            t("--"),
            t("{files...}"),
        ])
        .unwrap();
        let hostile = "a b; rm -rf / `id` $(id) | cat\nx";
        let argv = tpl
            .build(
                &params(),
                &[
                    text(hostile),
                    list(&["x y", "-z"]),
                    None,
                    Some(Arg::Flag(false)),
                    None,
                ],
            )
            .unwrap();
        assert_eq!(
            argv,
            [
                "-n".to_owned(),
                format!("--regexp={hostile}"),
                "{literal}".into(),
                format!("{hostile}.{hostile}"),
                "--".into(),
                "x y".into(),
                "-z".into(),
            ]
        );
        let argv = tpl
            .build(
                &params(),
                &[text("p"), list(&[]), text("5"), Some(Arg::Flag(true)), None],
            )
            .unwrap();
        assert_eq!(
            argv,
            [
                "-n",
                "--regexp=p",
                "{literal}",
                "p.p",
                "--max-count",
                "5",
                "-v",
                "--"
            ]
        );
    }

    #[test]
    fn values_that_would_be_options_are_refused() {
        let tpl = template(&[t("{pattern}"), t("{files...}"), t("--"), t("{pattern}")]).unwrap();
        let refused = |args: &[Option<Arg>]| tpl.build(&params(), args).unwrap_err();
        let fault = refused(&[text("--output=/etc/passwd"), list(&[]), None, None, None]);
        assert_eq!(fault.code, Fault::INVALID_PARAMS);
        assert!(
            fault.message.contains("\"pattern\" may not start with '-'"),
            "{fault}"
        );
        refused(&[text("ok"), list(&["fine", "-rf"]), None, None, None]);
        // Negative numbers read as options too (`head -5`).
        let tpl_limit = template(&[group("limit", &["{limit}"])]).unwrap();
        let args = [text("x"), list(&[]), text("-5"), None, None];
        assert!(tpl_limit.build(&params(), &args).is_err());
        // An empty value does not hide the next one's dash.
        let joined = template(&[t("{pattern}{pattern}")]).unwrap();
        assert!(joined
            .build(&params(), &[text(""), list(&[]), None, None, None])
            .is_ok());
        let joined = Template::parse(&[t("{limit}{pattern}")], &params_with_default(), None);
        let args = [text("-x"), list(&[]), text(""), None, None];
        assert!(joined
            .unwrap()
            .build(&params_with_default(), &args)
            .is_err());
    }

    fn params_with_default() -> Vec<Param> {
        let mut ps = params();
        ps[2].default = Some(Arg::Text(String::new()));
        ps
    }

    #[test]
    fn dashes_are_allowed_after_a_literal_double_dash_or_when_declared() {
        let tpl = template(&[t("--"), t("{pattern}"), t("{files...}")]).unwrap();
        let argv = tpl
            .build(&params(), &[text("-e"), list(&["--x"]), None, None, None])
            .unwrap();
        assert_eq!(argv, ["--", "-e", "--x"]);
        let mut ps = params();
        ps[0].allow_dash = true;
        let tpl = Template::parse(&[t("{pattern}")], &ps, None).unwrap();
        assert_eq!(
            tpl.build(&ps, &[text("-e"), None, None, None, None])
                .unwrap(),
            ["-e"]
        );
        // Text before the value means it cannot start an option.
        let tpl = template(&[t("--pattern={pattern}")]).unwrap();
        let args = [text("-e"), list(&[]), None, None, None];
        assert_eq!(tpl.build(&params(), &args).unwrap(), ["--pattern=-e"]);
    }

    #[test]
    fn bad_templates_are_refused_at_load() {
        let err = |args: &[ElementFile]| template(args).unwrap_err();
        assert!(matches!(
            err(&[t("{nope}")]),
            TemplateError::UnknownParam(..)
        ));
        assert!(matches!(err(&[t("{pattern")]), TemplateError::Brace(..)));
        assert!(matches!(err(&[t("a}b")]), TemplateError::Brace(..)));
        assert!(matches!(
            err(&[t("x{files...}")]),
            TemplateError::SpreadNotAlone(..)
        ));
        assert!(matches!(
            err(&[t("{pattern...}")]),
            TemplateError::SpreadNotList(..)
        ));
        assert!(matches!(
            err(&[t("{files}")]),
            TemplateError::ListNotSpread(..)
        ));
        assert!(matches!(
            err(&[t("{input}")]),
            TemplateError::StdinInArgs(..)
        ));
        assert!(matches!(err(&[t("{limit}")]), TemplateError::Unguarded(..)));
        assert!(matches!(err(&[t("a\0")]), TemplateError::Nul(..)));
        assert!(matches!(
            err(&[group("colour", &["x"])]),
            TemplateError::UnknownGroup(..)
        ));
        // A group on another parameter does not make one safe to use.
        assert!(matches!(
            err(&[group("verbose", &["{limit}"])]),
            TemplateError::Unguarded(..)
        ));
        let tpl = template(&[t("{pattern}"), group("limit", &["{limit}"])]).unwrap();
        assert!(tpl.uses(0) && tpl.uses(2) && !tpl.uses(1) && !tpl.uses(3));
    }

    #[test]
    fn literal_text_is_kept_whole() {
        let tpl = template(&[t(""), t("a b"), t("}}{{")]).unwrap();
        let args = [text("x"), list(&[]), None, None, None];
        assert_eq!(tpl.build(&params(), &args).unwrap(), ["", "a b", "}{"]);
    }
}
