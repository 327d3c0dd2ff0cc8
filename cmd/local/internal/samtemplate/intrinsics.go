package samtemplate

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ErrUnresolvable is returned (wrapped) for a value that cannot be known
// without deploying: a Fn::GetAtt, a Ref to a resource, an import, a
// parameter with neither a default nor an override.
var ErrUnresolvable = errors.New("samtemplate: cannot be resolved locally")

// noValue is what {"Ref": "AWS::NoValue"} evaluates to: the enclosing key or
// list item disappears.
type noValueT struct{}

var noValue = noValueT{}

// resolver evaluates CloudFormation intrinsic functions against parameter
// values, pseudo parameters, conditions and mappings.
type resolver struct {
	params     map[string]any // resolved values: string, or []any for list types
	paramErr   map[string]error
	pseudo     map[string]any
	conditions map[string]any
	condCache  map[string]bool
	condBusy   map[string]bool
	mappings   map[string]any
	resources  map[string]any
}

// eval resolves every intrinsic function inside v.
func (r *resolver) eval(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 1 {
			for k, arg := range t {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return r.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(t))
		for _, k := range sortedKeys(t) {
			ev, err := r.eval(t[k])
			if err != nil {
				return nil, err
			}
			if ev != noValue {
				out[k] = ev
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(t))
		for _, item := range t {
			ev, err := r.eval(item)
			if err != nil {
				return nil, err
			}
			if ev != noValue {
				out = append(out, ev)
			}
		}
		return out, nil
	}
	return v, nil
}

func (r *resolver) intrinsic(name string, arg any) (any, error) {
	switch name {
	case "Ref":
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("samtemplate: Ref wants a name, got %s", describe(arg))
		}
		return r.ref(s)
	case "Fn::Sub":
		return r.sub(arg)
	case "Fn::If":
		args, ok := arg.([]any)
		if !ok || len(args) != 3 {
			return nil, fmt.Errorf("samtemplate: Fn::If wants [condition, then, else]")
		}
		cond, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("samtemplate: Fn::If wants a condition name, got %s", describe(args[0]))
		}
		b, err := r.condition(cond)
		if err != nil {
			return nil, err
		}
		if b {
			return r.eval(args[1])
		}
		return r.eval(args[2])
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		b, err := r.condExpr(map[string]any{name: arg})
		if err != nil {
			return nil, err
		}
		return strconv.FormatBool(b), nil
	case "Fn::Join":
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, fmt.Errorf("samtemplate: Fn::Join wants [delimiter, list]")
		}
		delim, err := r.evalString(args[0])
		if err != nil {
			return nil, err
		}
		list, err := r.evalList(args[1])
		if err != nil {
			return nil, err
		}
		parts := make([]string, len(list))
		for i, item := range list {
			s, ok := item.(string)
			if !ok {
				return nil, fmt.Errorf("samtemplate: Fn::Join: item %d is %s, not a string", i, describe(item))
			}
			parts[i] = s
		}
		return strings.Join(parts, delim), nil
	case "Fn::Select":
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, fmt.Errorf("samtemplate: Fn::Select wants [index, list]")
		}
		is, err := r.evalString(args[0])
		if err != nil {
			return nil, err
		}
		i, err := strconv.Atoi(is)
		if err != nil {
			return nil, fmt.Errorf("samtemplate: Fn::Select: index %q is not a number", is)
		}
		list, err := r.evalList(args[1])
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= len(list) {
			return nil, fmt.Errorf("samtemplate: Fn::Select: index %d out of range (%d items)", i, len(list))
		}
		return list[i], nil
	case "Fn::Split":
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, fmt.Errorf("samtemplate: Fn::Split wants [delimiter, string]")
		}
		delim, err := r.evalString(args[0])
		if err != nil {
			return nil, err
		}
		s, err := r.evalString(args[1])
		if err != nil {
			return nil, err
		}
		var out []any
		for _, p := range strings.Split(s, delim) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::FindInMap":
		return r.findInMap(arg)
	case "Fn::Base64":
		s, err := r.evalString(arg)
		if err != nil {
			return nil, err
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	case "Fn::GetAZs":
		region, _ := r.pseudo["AWS::Region"].(string)
		return []any{region + "a", region + "b", region + "c"}, nil
	case "Fn::ToJsonString":
		v, err := r.eval(arg)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("samtemplate: Fn::ToJsonString: %w", err)
		}
		return string(b), nil
	case "Fn::GetAtt":
		return nil, fmt.Errorf("%w: Fn::GetAtt %s", ErrUnresolvable, describe(arg))
	}
	return nil, fmt.Errorf("%w: %s", ErrUnresolvable, name)
}

func (r *resolver) ref(name string) (any, error) {
	if v, ok := r.pseudo[name]; ok {
		return v, nil
	}
	if name == "AWS::NoValue" {
		return noValue, nil
	}
	if v, ok := r.params[name]; ok {
		return v, nil
	}
	if err, ok := r.paramErr[name]; ok {
		return nil, err
	}
	if _, ok := r.resources[name]; ok {
		return nil, fmt.Errorf("%w: Ref %s (a resource)", ErrUnresolvable, name)
	}
	return nil, fmt.Errorf("samtemplate: Ref %s: no such parameter or resource", name)
}

func (r *resolver) evalString(v any) (string, error) {
	ev, err := r.eval(v)
	if err != nil {
		return "", err
	}
	switch t := ev.(type) {
	case string:
		return t, nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("samtemplate: want a string, got %s", describe(ev))
}

func (r *resolver) evalList(v any) ([]any, error) {
	ev, err := r.eval(v)
	if err != nil {
		return nil, err
	}
	l, ok := ev.([]any)
	if !ok {
		return nil, fmt.Errorf("samtemplate: want a list, got %s", describe(ev))
	}
	return l, nil
}

// sub evaluates Fn::Sub in both its forms: "text" and ["text", {vars}].
func (r *resolver) sub(arg any) (any, error) {
	var text string
	vars := map[string]any{}
	switch t := arg.(type) {
	case string:
		text = t
	case []any:
		if len(t) != 2 {
			return nil, fmt.Errorf("samtemplate: Fn::Sub wants a string or [string, variables]")
		}
		s, ok := t[0].(string)
		if !ok {
			return nil, fmt.Errorf("samtemplate: Fn::Sub: the template is %s, not a string", describe(t[0]))
		}
		text = s
		m, ok := t[1].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("samtemplate: Fn::Sub: the variables are %s, not a mapping", describe(t[1]))
		}
		for k, v := range m {
			ev, err := r.eval(v)
			if err != nil {
				return nil, fmt.Errorf("samtemplate: Fn::Sub variable %s: %w", k, err)
			}
			vars[k] = ev
		}
	default:
		return nil, fmt.Errorf("samtemplate: Fn::Sub wants a string or [string, variables], got %s", describe(arg))
	}
	var b strings.Builder
	for {
		i := strings.Index(text, "${")
		if i < 0 {
			b.WriteString(text)
			return b.String(), nil
		}
		b.WriteString(text[:i])
		rest := text[i+2:]
		if strings.HasPrefix(rest, "!") { // ${!Literal} stays as ${Literal}
			b.WriteString("${")
			text = rest[1:]
			continue
		}
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return nil, fmt.Errorf("samtemplate: Fn::Sub: unclosed ${ in %q", text)
		}
		name := strings.TrimSpace(rest[:j])
		text = rest[j+1:]
		v, ok := vars[name]
		if !ok {
			if res, attr, dotted := strings.Cut(name, "."); dotted && !strings.HasPrefix(name, "AWS::") {
				return nil, fmt.Errorf("%w: ${%s.%s}", ErrUnresolvable, res, attr)
			}
			var err error
			if v, err = r.ref(name); err != nil {
				return nil, fmt.Errorf("samtemplate: Fn::Sub ${%s}: %w", name, err)
			}
		}
		s, err := scalarString(v)
		if err != nil {
			return nil, fmt.Errorf("samtemplate: Fn::Sub ${%s}: %w", name, err)
		}
		b.WriteString(s)
	}
}

func (r *resolver) findInMap(arg any) (any, error) {
	args, ok := arg.([]any)
	if !ok || len(args) < 3 {
		return nil, fmt.Errorf("samtemplate: Fn::FindInMap wants [map, key, key]")
	}
	var keys [3]string
	for i := range keys {
		s, err := r.evalString(args[i])
		if err != nil {
			return nil, fmt.Errorf("samtemplate: Fn::FindInMap: %w", err)
		}
		keys[i] = s
	}
	var cur any = r.mappings
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if ok {
			cur, ok = m[k]
		}
		if !ok {
			if len(args) == 4 { // the language extension's {DefaultValue: x}
				if d, ok := args[3].(map[string]any); ok {
					if dv, ok := d["DefaultValue"]; ok {
						return r.eval(dv)
					}
				}
			}
			return nil, fmt.Errorf("samtemplate: Fn::FindInMap: no %s/%s/%s in Mappings", keys[0], keys[1], keys[2])
		}
	}
	return r.eval(cur)
}

// condition evaluates the named condition of the Conditions section.
func (r *resolver) condition(name string) (bool, error) {
	if b, ok := r.condCache[name]; ok {
		return b, nil
	}
	expr, ok := r.conditions[name]
	if !ok {
		return false, fmt.Errorf("samtemplate: no condition %s", name)
	}
	if r.condBusy[name] {
		return false, fmt.Errorf("samtemplate: condition %s refers to itself", name)
	}
	r.condBusy[name] = true
	b, err := r.condExpr(expr)
	delete(r.condBusy, name)
	if err != nil {
		return false, fmt.Errorf("samtemplate: condition %s: %w", name, err)
	}
	r.condCache[name] = b
	return b, nil
}

func (r *resolver) condExpr(expr any) (bool, error) {
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		if s, ok := expr.(string); ok && (s == "true" || s == "false") {
			return s == "true", nil
		}
		return false, fmt.Errorf("samtemplate: want a condition function, got %s", describe(expr))
	}
	for k, arg := range m {
		switch k {
		case "Condition":
			s, ok := arg.(string)
			if !ok {
				return false, fmt.Errorf("samtemplate: Condition wants a name")
			}
			return r.condition(s)
		case "Fn::Equals":
			args, ok := arg.([]any)
			if !ok || len(args) != 2 {
				return false, fmt.Errorf("samtemplate: Fn::Equals wants two values")
			}
			a, err := r.eval(args[0])
			if err != nil {
				return false, err
			}
			b, err := r.eval(args[1])
			if err != nil {
				return false, err
			}
			return canonical(a) == canonical(b), nil
		case "Fn::Not", "Fn::And", "Fn::Or":
			args, ok := arg.([]any)
			if !ok || len(args) == 0 || (k == "Fn::Not" && len(args) != 1) {
				return false, fmt.Errorf("samtemplate: %s wants a list of conditions", k)
			}
			acc := k == "Fn::And"
			for _, a := range args {
				b, err := r.condExpr(a)
				if err != nil {
					return false, err
				}
				switch k {
				case "Fn::Not":
					return !b, nil
				case "Fn::And":
					acc = acc && b
				case "Fn::Or":
					acc = acc || b
				}
			}
			return acc, nil
		}
		if k != "Ref" && !strings.HasPrefix(k, "Fn::") {
			return false, fmt.Errorf("samtemplate: want a condition function, got %s", describe(expr))
		}
		v, err := r.eval(m)
		if err != nil {
			return false, err
		}
		if _, isMap := v.(map[string]any); isMap {
			return false, fmt.Errorf("samtemplate: want a condition function, got %s", describe(v))
		}
		return r.condExpr(v)
	}
	return false, nil // unreachable: len(m) == 1
}

// scalarString renders a resolved scalar for Fn::Sub and environment values.
func scalarString(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case nil:
		return "", nil
	case []any: // a list parameter referenced as a whole, as CloudFormation joins it
		parts := make([]string, 0, len(t))
		for _, item := range t {
			s, err := scalarString(item)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("samtemplate: want a scalar, got %s", describe(v))
}

func canonical(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v) // plain maps, lists and strings always marshal
	return string(b)
}

func describe(v any) string {
	switch t := v.(type) {
	case string:
		return strconv.Quote(t)
	case map[string]any:
		return "a mapping (" + strings.Join(sortedKeys(t), ", ") + ")"
	case []any:
		parts := make([]string, len(t))
		for i, item := range t {
			parts[i] = describe(item)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
