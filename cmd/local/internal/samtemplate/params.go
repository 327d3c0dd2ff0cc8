package samtemplate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// ParseParameterOverrides parses --parameter-overrides as sam takes it:
// space-separated Key=Value pairs (values may be quoted: Key="a b") or
// ParameterKey=Key,ParameterValue=Value pairs. Several flag values may be
// passed; later ones win.
func ParseParameterOverrides(texts ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, text := range texts {
		tokens, err := splitQuoted(text)
		if err != nil {
			return nil, fmt.Errorf("samtemplate: --parameter-overrides: %w", err)
		}
		for _, tok := range tokens {
			var key, value string
			if rest, ok := strings.CutPrefix(tok, "ParameterKey="); ok {
				k, v, found := strings.Cut(rest, ",ParameterValue=")
				if !found {
					return nil, fmt.Errorf("samtemplate: --parameter-overrides: %q has no ParameterValue", tok)
				}
				key, value = k, v
			} else {
				k, v, found := strings.Cut(tok, "=")
				if !found {
					return nil, fmt.Errorf("samtemplate: --parameter-overrides: %q is not Key=Value", tok)
				}
				key, value = k, v
			}
			if key == "" {
				return nil, fmt.Errorf("samtemplate: --parameter-overrides: %q has an empty key", tok)
			}
			out[key] = value
		}
	}
	return out, nil
}

// splitQuoted splits on whitespace outside single or double quotes and
// removes the quotes; a backslash escapes the next character inside double
// quotes and outside quotes.
func splitQuoted(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inToken := false
	var quote rune
	escaped := false
	for _, c := range s {
		switch {
		case escaped:
			cur.WriteRune(c)
			escaped = false
		case c == '\\' && quote != '\'':
			escaped = true
			inToken = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote = c
			inToken = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inToken {
				out = append(out, cur.String())
				cur.Reset()
				inToken = false
			}
		default:
			cur.WriteRune(c)
			inToken = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c quote", quote)
	}
	if escaped {
		return nil, fmt.Errorf("a trailing backslash")
	}
	if inToken {
		out = append(out, cur.String())
	}
	return out, nil
}

// EnvVars is an --env-vars file in sam's format: {"Parameters": {...}} applies
// to every function, {"<LogicalId>": {...}} to one.
type EnvVars struct {
	Parameters map[string]string
	Functions  map[string]map[string]string
}

// ParseEnvVars parses an --env-vars JSON file. Values may be strings,
// numbers, booleans or null (""); anything else is an error.
func ParseEnvVars(data []byte) (EnvVars, error) {
	var raw map[string]map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return EnvVars{}, fmt.Errorf("samtemplate: env-vars: want {\"Parameters\": {...}, \"<LogicalId>\": {...}}: %w", err)
	}
	ev := EnvVars{Parameters: map[string]string{}, Functions: map[string]map[string]string{}}
	for section, vars := range raw {
		m := make(map[string]string, len(vars))
		for k, v := range vars {
			s, err := envValue(v)
			if err != nil {
				return EnvVars{}, fmt.Errorf("samtemplate: env-vars: %s.%s: %w", section, k, err)
			}
			m[k] = s
		}
		if section == "Parameters" {
			ev.Parameters = m
		} else {
			ev.Functions[section] = m
		}
	}
	return ev, nil
}

func envValue(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	case bool:
		if t {
			return "true", nil
		}
		return "false", nil
	case json.Number:
		return t.String(), nil
	}
	return "", fmt.Errorf("want a string, number, boolean or null")
}

// ComposeEnv composes the environment of function f as sam local does: the
// template's variables, then each layer in order (for example the tool's own
// settings, then the env-vars file's Parameters, then its section for f).
// A layer sets only variables the template declares; the names it could not
// set are returned, sorted, so the caller can say so.
func (f *Function) ComposeEnv(layers ...map[string]string) (env map[string]string, ignored []string) {
	env = make(map[string]string, len(f.Environment))
	for k, v := range f.Environment {
		env[k] = v
	}
	seen := map[string]bool{}
	for _, layer := range layers {
		for k, v := range layer {
			if _, declared := f.Environment[k]; declared {
				env[k] = v
			} else if !seen[k] {
				seen[k] = true
				ignored = append(ignored, k)
			}
		}
	}
	sort.Strings(ignored)
	return env, ignored
}

// Layers returns the env-vars file's layers for function id: Parameters,
// then the function's own section.
func (e EnvVars) Layers(id string) []map[string]string {
	return []map[string]string{e.Parameters, e.Functions[id]}
}
