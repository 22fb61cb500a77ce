package main

import "testing"

func parse(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := decodeNumbers([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		expected, actual string
		ok               bool
	}{
		{`{"total_bytes": "9007199254740993"}`, `{"totalBytes": "9007199254740993"}`, true},
		{`{"totalBytes": "9007199254740993"}`, `{"totalBytes": "9007199254740992"}`, false},
		{`{"bitsPerParam": 32}`, `{"bitsPerParam": 32}`, true},
		{`{"count": 5}`, `{"count": "5"}`, true},
		{`{"count": "5"}`, `{"count": 5.5}`, false},
		{`{"x": 1.0}`, `{"x": 1.0000000001}`, true},
		{`{"x": 1.0}`, `{"x": 1.001}`, false},
		{`{"x": 0}`, `{}`, true},
		{`{"x": "0"}`, `{}`, true},
		{`{"x": false, "y": "", "z": [], "w": {}, "v": "LEVEL_UNSPECIFIED"}`, `{}`, true},
		{`{"x": 1}`, `{}`, false},
		{`{"a": [1, 2]}`, `{"a": [1, 2], "extra": true}`, true},
		{`{"a": [1, 2]}`, `{"a": [1]}`, false},
		{`{"s": "A"}`, `{"s": "B"}`, false},
		{`{"b": true}`, `{"b": true}`, true},
	} {
		why := match(parse(t, tc.expected), parse(t, tc.actual), 1e-9, "$")
		if (why == "") != tc.ok {
			t.Errorf("match(%s, %s) = %q, want ok=%v", tc.expected, tc.actual, why, tc.ok)
		}
	}
}
