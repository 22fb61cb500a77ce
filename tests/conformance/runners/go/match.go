package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The matching rules of tests/conformance/README.md. Values come from
// encoding/json with UseNumber, so numbers are json.Number (exact text).

var integerString = regexp.MustCompile(`^-?[0-9]+$`)

// lowerCamel converts a proto field name (or a name already in lowerCamelCase)
// to lowerCamelCase: an underscore is dropped and the next letter upper-cased.
func lowerCamel(key string) string {
	var b strings.Builder
	upper := false
	for i, r := range key {
		switch {
		case r == '_':
			upper = true
		case upper:
			b.WriteString(strings.ToUpper(string(r)))
			upper = false
		case i == 0:
			b.WriteString(strings.ToLower(string(r)))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isDefault reports whether v is a proto3 default that proto3 JSON omits.
func isDefault(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return err == nil && f == 0
	case string:
		return x == "" || x == "0" || strings.HasSuffix(x, "_UNSPECIFIED")
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// exactInteger returns v as an exact integer when it is a string of digits
// (optional '-') or an integral JSON number.
func exactInteger(v any) (*big.Int, bool) {
	switch x := v.(type) {
	case string:
		if !integerString.MatchString(x) {
			return nil, false
		}
		n, ok := new(big.Int).SetString(x, 10)
		return n, ok
	case json.Number:
		f, ok := new(big.Float).SetPrec(2048).SetString(string(x))
		if !ok || !f.IsInt() {
			return nil, false
		}
		n, _ := f.Int(nil)
		return n, true
	}
	return nil, false
}

func describe(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// match returns "" when actual matches expected, else why not (with the path).
func match(expected, actual any, tolerance float64, path string) string {
	switch e := expected.(type) {
	case map[string]any:
		a, ok := actual.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: expected an object, got %s", path, describe(actual))
		}
		byCamel := make(map[string]any, len(a))
		for k, v := range a {
			byCamel[lowerCamel(k)] = v
		}
		keys := make([]string, 0, len(e))
		for k := range e {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ck := lowerCamel(k)
			av, present := byCamel[ck]
			if !present {
				if isDefault(e[k]) {
					continue
				}
				return fmt.Sprintf("%s.%s: missing, expected %s", path, ck, describe(e[k]))
			}
			if why := match(e[k], av, tolerance, path+"."+ck); why != "" {
				return why
			}
		}
		return ""
	case []any:
		a, ok := actual.([]any)
		if !ok {
			return fmt.Sprintf("%s: expected an array, got %s", path, describe(actual))
		}
		if len(a) != len(e) {
			return fmt.Sprintf("%s: expected %d elements, got %d", path, len(e), len(a))
		}
		for i := range e {
			if why := match(e[i], a[i], tolerance, fmt.Sprintf("%s[%d]", path, i)); why != "" {
				return why
			}
		}
		return ""
	}

	// Rule 3: exact integers when either side is a string of digits.
	_, eIsString := expected.(string)
	_, aIsString := actual.(string)
	if (eIsString && integerString.MatchString(expected.(string))) ||
		(aIsString && integerString.MatchString(actual.(string))) {
		ei, eok := exactInteger(expected)
		ai, aok := exactInteger(actual)
		if eok && aok && ei.Cmp(ai) == 0 {
			return ""
		}
		return fmt.Sprintf("%s: expected %s, got %s", path, describe(expected), describe(actual))
	}

	switch e := expected.(type) {
	case json.Number:
		a, ok := actual.(json.Number)
		if !ok {
			return fmt.Sprintf("%s: expected %s, got %s", path, e, describe(actual))
		}
		ef, err1 := strconv.ParseFloat(string(e), 64)
		af, err2 := strconv.ParseFloat(string(a), 64)
		if err1 != nil || err2 != nil {
			return fmt.Sprintf("%s: expected %s, got %s", path, e, a)
		}
		bound := tolerance
		if ef != 0 {
			bound = tolerance * math.Abs(ef)
		}
		if math.Abs(af-ef) <= bound {
			return ""
		}
		return fmt.Sprintf("%s: expected %s, got %s (tolerance %g)", path, e, a, tolerance)
	case string, bool, nil:
		if expected == actual {
			return ""
		}
		return fmt.Sprintf("%s: expected %s, got %s", path, describe(expected), describe(actual))
	}
	return fmt.Sprintf("%s: unsupported expected value %s", path, describe(expected))
}
