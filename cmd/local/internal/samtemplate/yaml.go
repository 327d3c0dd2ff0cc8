package samtemplate

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeYAML turns a CloudFormation YAML (or JSON) document into plain Go
// values: map[string]any, []any, string (every scalar keeps its source text)
// and nil. The short forms of the intrinsic functions (!Ref, !Sub, !GetAtt,
// !If, ...) become their long forms ({"Ref": ...}, {"Fn::Sub": ...}), so the
// resolver sees one shape only.
func decodeYAML(data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("samtemplate: parse YAML: %w", err)
	}
	if doc.Kind == 0 {
		return nil, fmt.Errorf("samtemplate: parse YAML: the document is empty")
	}
	v, err := convertNode(&doc, 0)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("samtemplate: parse YAML: the document is not a mapping")
	}
	return m, nil
}

// maxDepth bounds the nesting (and alias expansion) of a template.
const maxDepth = 200

func convertNode(n *yaml.Node, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("samtemplate: line %d: nested too deeply", n.Line)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return convertNode(n.Content[0], depth+1)
	case yaml.AliasNode:
		return convertNode(n.Alias, depth+1)
	}
	v, err := convertPlain(n, depth)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	return shortForm(n, v)
}

func convertPlain(n *yaml.Node, depth int) (any, error) {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("samtemplate: line %d: a mapping key must be a scalar", k.Line)
			}
			cv, err := convertNode(v, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = cv
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			cv, err := convertNode(c, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, cv)
		}
		return s, nil
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("samtemplate: line %d: unsupported YAML node", n.Line)
}

// shortForm maps a tagged node (!Ref x) to its long form ({"Ref": x}).
func shortForm(n *yaml.Node, v any) (any, error) {
	name := strings.TrimPrefix(n.Tag, "!")
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("samtemplate: line %d: !GetAtt %q is not Resource.Attribute", n.Line, s)
			}
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	}
	return map[string]any{"Fn::" + name: v}, nil
}
