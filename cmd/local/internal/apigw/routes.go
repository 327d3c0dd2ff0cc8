// Package apigw emulates an API Gateway HTTP API in front of local Lambda
// functions: it selects the template's route for a request as API Gateway
// does, builds the payload format 2.0 event, invokes the function and maps
// its response (or failure) back to HTTP.
package apigw

import (
	"net/url"
	"sort"
	"strings"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
)

// segment kinds, most specific first.
const (
	segNone = iota
	segGreedy
	segParam
	segLiteral
)

type segment struct {
	kind  int
	value string // the literal, or the parameter's name
}

type route struct {
	samtemplate.FunctionRoute
	segs      []segment
	anyMethod bool
	isDefault bool
}

// Router selects the route of a request.
type Router struct {
	routes []route // most specific first
}

// NewRouter compiles the template's routes.
func NewRouter(routes []samtemplate.FunctionRoute) *Router {
	rt := &Router{}
	for _, fr := range routes {
		r := route{FunctionRoute: fr, anyMethod: fr.Method == "ANY", isDefault: fr.Path == "$default"}
		if !r.isDefault {
			for _, s := range strings.Split(strings.Trim(fr.Path, "/"), "/") {
				switch {
				case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "+}"):
					r.segs = append(r.segs, segment{segGreedy, s[1 : len(s)-2]})
				case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
					r.segs = append(r.segs, segment{segParam, s[1 : len(s)-1]})
				default:
					r.segs = append(r.segs, segment{segLiteral, s})
				}
			}
		}
		rt.routes = append(rt.routes, r)
	}
	sort.SliceStable(rt.routes, func(i, j int) bool { return moreSpecific(rt.routes[i], rt.routes[j]) })
	return rt
}

// moreSpecific orders routes as API Gateway prefers them: $default last;
// segment by segment, a literal before a parameter before a greedy one;
// then an explicit method before ANY.
func moreSpecific(a, b route) bool {
	if a.isDefault != b.isDefault {
		return b.isDefault
	}
	for i := 0; i < len(a.segs) || i < len(b.segs); i++ {
		ka, kb := segNone, segNone
		if i < len(a.segs) {
			ka = a.segs[i].kind
		}
		if i < len(b.segs) {
			kb = b.segs[i].kind
		}
		if ka != kb {
			return ka > kb
		}
	}
	return !a.anyMethod && b.anyMethod
}

// Match returns the route for method and the request's escaped path, with
// its path parameters URL-decoded.
func (rt *Router) Match(method, escapedPath string) (samtemplate.FunctionRoute, map[string]string, bool) {
	parts := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	for _, r := range rt.routes {
		if !r.anyMethod && r.Method != method {
			continue
		}
		if r.isDefault {
			return r.FunctionRoute, nil, true
		}
		if params, ok := r.match(parts); ok {
			return r.FunctionRoute, params, true
		}
	}
	return samtemplate.FunctionRoute{}, nil, false
}

func (r route) match(parts []string) (map[string]string, bool) {
	var params map[string]string
	set := func(name, raw string) bool {
		v, err := url.PathUnescape(raw)
		if err != nil {
			return false
		}
		if params == nil {
			params = map[string]string{}
		}
		params[name] = v
		return true
	}
	for i, s := range r.segs {
		if s.kind == segGreedy {
			rest := strings.Join(parts[i:], "/")
			return params, i < len(parts) && rest != "" && set(s.value, rest)
		}
		if i >= len(parts) {
			return nil, false
		}
		switch s.kind {
		case segLiteral:
			v, err := url.PathUnescape(parts[i])
			if err != nil || v != s.value {
				return nil, false
			}
		case segParam:
			if parts[i] == "" || !set(s.value, parts[i]) {
				return nil, false
			}
		}
	}
	if len(parts) != len(r.segs) {
		return nil, false
	}
	return params, true
}
