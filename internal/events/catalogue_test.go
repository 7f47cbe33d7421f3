package events

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const importPath = "github.com/kura-db/kura/internal/events"

// emitters are the calls that emit an event, by function or method name, and the index of
// their reason argument: the Recorder's methods, client-go's recorder, and the clustering
// loop's helper that adds an EmitEvent step.
var emitters = map[string]int{"Emit": 2, "EmitRelated": 3, "Eventf": 3, "event": 1}

// TestCatalogue reads the operator's source (every non-test Go file outside test/): every
// reason declared here must be emitted somewhere, every emitted reason must be declared here
// (an emitter's reason is a constant of this package, an alias of one such as
// clustering.EventBootstrapped, or a pass-through of a reason chosen elsewhere: a parameter
// named reason, a field named Reason), and docs/events.md must list exactly these reasons.
func TestCatalogue(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	declared := declaredReasons(t, filepath.Join(filepath.Dir(file), "events.go"))
	if len(declared) < 10 {
		t.Fatalf("only %d reasons found in events.go: the test no longer reads the catalogue", len(declared))
	}

	used := map[string][]string{}
	type alias struct {
		dir, name, reason string
		decl              token.Pos
	}
	var aliases []alias
	type pkgFile struct {
		dir  string
		file *ast.File
	}
	var files []pkgFile
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin" || d.Name() == "node_modules" ||
				rel == "test" || rel == "hack" || rel == "docs" || rel == "charts") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files = append(files, pkgFile{dir: filepath.Dir(rel), file: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The local name of this package in a file ("" when not imported; "." for itself).
	localName := func(pf pkgFile) string {
		if pf.dir == filepath.Join("internal", "events") {
			return "."
		}
		for _, im := range pf.file.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); p == importPath {
				if im.Name != nil {
					return im.Name.Name
				}
				return "events"
			}
		}
		return ""
	}
	// reasonOf is the reason an expression names, if it names one of the catalogue's.
	reasonOf := func(pf pkgFile, name string, e ast.Expr) (string, bool) {
		switch x := e.(type) {
		case *ast.SelectorExpr:
			if id, ok := x.X.(*ast.Ident); ok && id.Name == name && declared[x.Sel.Name] != "" {
				return x.Sel.Name, true
			}
		case *ast.Ident:
			if name == "." && declared[x.Name] != "" {
				return x.Name, true
			}
		}
		return "", false
	}

	for _, pf := range files {
		name := localName(pf)
		if name == "" {
			continue
		}
		for _, decl := range pf.file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST || name == "." {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, v := range vs.Values {
					if r, ok := reasonOf(pf, name, v); ok {
						aliases = append(aliases, alias{dir: pf.dir, name: vs.Names[i].Name, reason: r, decl: vs.Names[i].Pos()})
					}
				}
			}
		}
	}
	isAlias := func(dir, id string) (string, bool) {
		for _, a := range aliases {
			if a.dir == dir && a.name == id {
				return a.reason, true
			}
		}
		return "", false
	}
	// An alias named from another package: clustering.EventBootstrapped.
	isQualifiedAlias := func(e ast.Expr) (string, bool) {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return "", false
		}
		pkg, ok := sel.X.(*ast.Ident)
		if !ok {
			return "", false
		}
		for _, a := range aliases {
			if filepath.Base(a.dir) == pkg.Name && a.name == sel.Sel.Name {
				return a.reason, true
			}
		}
		return "", false
	}

	var undeclared []string
	for _, pf := range files {
		name := localName(pf)
		if name == "." {
			continue
		}
		inAliasDecl := map[ast.Node]bool{}
		ast.Inspect(pf.file, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.GenDecl:
				if x.Tok == token.CONST {
					for _, spec := range x.Specs {
						for _, v := range spec.(*ast.ValueSpec).Values {
							inAliasDecl[v] = true
						}
					}
				}
			case *ast.SelectorExpr:
				if r, ok := reasonOf(pf, name, x); ok && !inAliasDecl[x] {
					used[r] = append(used[r], fset.Position(x.Pos()).String())
				}
				if r, ok := isQualifiedAlias(x); ok {
					used[r] = append(used[r], fset.Position(x.Pos()).String())
				}
			case *ast.Ident:
				if r, ok := isAlias(pf.dir, x.Name); ok {
					declaring := false
					for _, a := range aliases {
						if a.decl == x.Pos() {
							declaring = true
						}
					}
					if !declaring {
						used[r] = append(used[r], fset.Position(x.Pos()).String())
					}
				}
			}
			// What emitters are given.
			var arg ast.Expr
			switch x := n.(type) {
			case *ast.CallExpr:
				fn := ""
				switch f := x.Fun.(type) {
				case *ast.SelectorExpr:
					fn = f.Sel.Name
				case *ast.Ident:
					fn = f.Name
				}
				if i, ok := emitters[fn]; ok && len(x.Args) > i {
					arg = x.Args[i]
				}
			case *ast.CompositeLit:
				if id, ok := x.Type.(*ast.Ident); ok && id.Name == "EmitEvent" {
					for _, el := range x.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Reason" {
								arg = kv.Value
							}
						}
					}
				}
			}
			if arg == nil {
				return true
			}
			if _, ok := reasonOf(pf, name, arg); ok {
				return true
			}
			if _, ok := isQualifiedAlias(arg); ok {
				return true
			}
			switch a := arg.(type) {
			case *ast.Ident:
				if _, ok := isAlias(pf.dir, a.Name); ok || a.Name == "reason" {
					return true
				}
			case *ast.SelectorExpr:
				if a.Sel.Name == "Reason" {
					return true
				}
			}
			undeclared = append(undeclared, fset.Position(arg.Pos()).String())
			return true
		})
	}

	var unused []string
	for r := range declared {
		if len(used[r]) == 0 {
			unused = append(unused, r)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("reasons declared in internal/events but never emitted (remove them): %v", unused)
	}
	if len(undeclared) > 0 {
		t.Errorf("events emitted with a reason that is not a catalogue constant (declare it in internal/events and use it): %v", undeclared)
	}

	// docs/events.md lists exactly the catalogue.
	doc, err := os.ReadFile(filepath.Join(root, "docs", "events.md"))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]bool{}
	for _, v := range declared {
		values[v] = true
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		listed[m[1]] = true
		if !values[m[1]] {
			t.Errorf("docs/events.md lists %s, which is not in the catalogue", m[1])
		}
	}
	for v := range values {
		if !listed[v] {
			t.Errorf("docs/events.md does not list %s", v)
		}
	}
}

// declaredReasons maps each reason constant of events.go to its value (event types aside).
func declaredReasons(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || vs.Names[i].Name == "Normal" || vs.Names[i].Name == "Warning" {
					continue
				}
				out[vs.Names[i].Name], _ = strconv.Unquote(lit.Value)
			}
		}
	}
	return out
}
