//! Capture names, `{name|filter}` templates and regex compilation for profiles.
//!
//! Every capture a profile can refer to gets a small integer (its slot), so a file's or a study's
//! captures are a `Vec<Option<String>>` indexed by slot instead of a map per file: NIH has 112k
//! files and hashing every name for each of them shows up in the profile.

use regex::Regex;

/// Names that exist for every placed file without being captured: where the file comes from
/// (`archive`, member `path`, its `dir`, basename `file`, `stem` before the last dot, `ext`
/// after it), its `size` in bytes (decimal text, so an empty or damaged file can be told from
/// the listing alone) and, at study level, the ids the rules computed (`patient`, `study`).
pub const BUILTINS: [&str; 9] = ["archive", "path", "dir", "file", "stem", "ext", "size", "patient", "study"];
/// Slot of `patient` (study level only).
pub const SLOT_PATIENT: usize = 7;
/// Slot of `study` (study level only).
pub const SLOT_STUDY: usize = 8;
/// Number of builtin slots that exist for a single file (all but patient and study).
pub const FILE_BUILTINS: usize = 7;

/// The slot table of one profile: builtins first, then named captures in order of appearance.
#[derive(Debug, Clone)]
pub struct Names {
    names: Vec<String>,
}

impl Default for Names {
    fn default() -> Self {
        Names { names: BUILTINS.iter().map(|s| s.to_string()).collect() }
    }
}

impl Names {
    /// Slot of `name`, if known.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
    /// Slot of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> usize {
        match self.get(name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        }
    }
    /// Number of slots.
    pub fn len(&self) -> usize {
        self.names.len()
    }
    /// Name of a slot.
    pub fn name(&self, slot: usize) -> &str {
        &self.names[slot]
    }
}

/// A text transformation applied to a template variable.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `pad:N`: left-pad with zeros to N characters (ChestX-ray14 `%08d` patient ids).
    Pad(usize),
    /// `unpad`: strip leading zeros, keeping at least one digit.
    Unpad,
    /// `lower`.
    Lower,
    /// `upper`.
    Upper,
    /// `replace:FROM:TO`, e.g. `replace: :_` (SCR organ names with spaces): every occurrence.
    Replace(String, String),
    /// `map:FROM:TO`: the whole value FROM becomes TO, anything else is kept (ADNI's visit `sc`
    /// is ADNIMERGE's `bl`, while `m06sc` stays).
    Map(String, String),
}

impl Filter {
    fn parse(text: &str) -> Result<Filter, String> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (text, None),
        };
        match (name, arg) {
            ("pad", Some(n)) => n.parse().map(Filter::Pad).map_err(|_| format!("filter `pad:{n}` needs a number")),
            ("unpad", None) => Ok(Filter::Unpad),
            ("lower", None) => Ok(Filter::Lower),
            ("upper", None) => Ok(Filter::Upper),
            ("replace", Some(a)) => match a.split_once(':') {
                Some((from, to)) if !from.is_empty() => Ok(Filter::Replace(from.into(), to.into())),
                _ => Err(format!("filter `replace:{a}` must be `replace:FROM:TO`")),
            },
            ("map", Some(a)) => match a.split_once(':') {
                Some((from, to)) => Ok(Filter::Map(from.into(), to.into())),
                None => Err(format!("filter `map:{a}` must be `map:FROM:TO`")),
            },
            _ => Err(format!(
                "unknown filter `{text}` (known: pad:N, unpad, lower, upper, replace:FROM:TO, map:FROM:TO)"
            )),
        }
    }

    fn apply(&self, s: String) -> String {
        match self {
            Filter::Pad(n) => {
                if s.len() >= *n {
                    s
                } else {
                    let mut out = "0".repeat(n - s.len());
                    out.push_str(&s);
                    out
                }
            }
            Filter::Unpad => {
                let t = s.trim_start_matches('0');
                if t.is_empty() && !s.is_empty() { "0".into() } else { t.into() }
            }
            Filter::Lower => s.to_lowercase(),
            Filter::Upper => s.to_uppercase(),
            Filter::Replace(from, to) => s.replace(from.as_str(), to),
            Filter::Map(from, to) => {
                if s == *from {
                    to.clone()
                } else {
                    s
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Var { slot: usize, filters: Vec<Filter> },
}

/// A compiled `{name|filter|...}` template; `{{` and `}}` are literal braces.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`, resolving each variable with `resolve` (which says which names are
    /// visible where the template is used). Errors are short phrases for [`super::ProfileError`].
    pub fn parse(text: &str, resolve: &dyn Fn(&str) -> Option<usize>) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => return Err(format!("unmatched `}}` at byte {i} of template `{text}`")),
                '{' => {
                    let rest = &text[i + 1..];
                    let end =
                        rest.find('}').ok_or_else(|| format!("unclosed `{{` at byte {i} of template `{text}`"))?;
                    let inner = &rest[..end];
                    let mut pieces = inner.split('|');
                    let name = pieces.next().unwrap_or("").trim();
                    let slot = resolve(name).ok_or_else(|| {
                        format!("template `{text}` uses `{{{name}}}`, which is not a capture name here")
                    })?;
                    let filters = pieces.map(Filter::parse).collect::<Result<Vec<_>, _>>()?;
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var { slot, filters });
                    // Skip the variable's characters.
                    for _ in 0..inner.chars().count() + 1 {
                        chars.next();
                    }
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// Renders with the values of each slot; an absent value (optional capture that did not
    /// participate) renders as the empty string.
    pub fn render(&self, vals: &[Option<String>]) -> String {
        // Fast path: a single bare variable, by far the most common template.
        if let [Part::Var { slot, filters }] = self.parts.as_slice()
            && filters.is_empty()
        {
            return vals.get(*slot).and_then(|v| v.clone()).unwrap_or_default();
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var { slot, filters } => {
                    let mut v = vals.get(*slot).and_then(|v| v.clone()).unwrap_or_default();
                    for f in filters {
                        v = f.apply(v);
                    }
                    out.push_str(&v);
                }
            }
        }
        out
    }

    /// Slots the template reads.
    pub fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { slot, .. } => Some(*slot),
            Part::Lit(_) => None,
        })
    }
}

/// Compiles a regex, with an error phrase that quotes it.
pub fn regex(text: &str) -> Result<Regex, String> {
    Regex::new(text).map_err(|e| format!("invalid regex `{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_filters_and_escapes() {
        let mut names = Names::default();
        let organ = names.intern("organ");
        let id = names.intern("id");
        let t = Template::parse("{id}_{organ|replace: :_}.gif", &|n| names.get(n)).unwrap();
        let mut vals = vec![None; names.len()];
        vals[organ] = Some("left clavicle".into());
        vals[id] = Some("JPCLN001".into());
        assert_eq!(t.render(&vals), "JPCLN001_left_clavicle.gif");
        let t = Template::parse("{{{id|pad:10}}}", &|n| names.get(n)).unwrap();
        assert_eq!(t.render(&vals), "{00JPCLN001}");
        // `map` replaces the whole value only; `replace` every occurrence.
        let t = Template::parse("{id|map:sc:bl}/{id|replace:sc:bl}", &|n| names.get(n)).unwrap();
        vals[id] = Some("sc".into());
        assert_eq!(t.render(&vals), "bl/bl");
        vals[id] = Some("m06sc".into());
        assert_eq!(t.render(&vals), "m06sc/m06bl");
        assert!(Template::parse("{id|map:sc}", &|n| names.get(n)).is_err());
        assert!(Template::parse("{nope}", &|n| names.get(n)).is_err());
        assert!(Template::parse("{id|frob}", &|n| names.get(n)).is_err());
        assert!(Template::parse("{id", &|n| names.get(n)).is_err());
    }
}
