// Command gendocs writes docs/api.md, the reference of every field of the kura.dev API, from
// the generated CRDs: field paths, types, defaults, enums, validation rules and the doc
// comments of the Go types. `make generate` runs it; CI fails when the output is stale.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	dir := "charts/kura/crds"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		fmt.Fprintf(os.Stderr, "gendocs: no CRDs in %s\n", dir)
		os.Exit(1)
	}
	order := map[string]int{"MySQLCluster": 0, "Backup": 1, "BackupSchedule": 2, "Restore": 3}
	var crds []apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gendocs:", err)
			os.Exit(1)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(b, &crd); err != nil {
			fmt.Fprintf(os.Stderr, "gendocs: %s: %v\n", f, err)
			os.Exit(1)
		}
		crds = append(crds, crd)
	}
	sort.Slice(crds, func(i, j int) bool { return order[crds[i].Spec.Names.Kind] < order[crds[j].Spec.Names.Kind] })

	var b strings.Builder
	b.WriteString("# API reference: kura.dev/v1alpha1\n\n")
	b.WriteString("Generated from the CRDs by `make generate` (hack/gendocs); do not edit. Every field, its type,\n")
	b.WriteString("default and the rules the API server enforces. Refused manifests and their messages are listed\n")
	b.WriteString("in [validation.md](validation.md).\n\n")
	for _, crd := range crds {
		fmt.Fprintf(&b, "- [%s](#%s)\n", crd.Spec.Names.Kind, strings.ToLower(crd.Spec.Names.Kind))
	}
	for _, crd := range crds {
		v := crd.Spec.Versions[0]
		s := v.Schema.OpenAPIV3Schema
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", crd.Spec.Names.Kind, oneLine(s.Description))
		fmt.Fprintf(&b, "Plural `%s`, short names `%s`, scope %s.\n", crd.Spec.Names.Plural, strings.Join(crd.Spec.Names.ShortNames, "`, `"), crd.Spec.Scope)
		if len(s.XValidations) > 0 {
			b.WriteString("\nObject rules:\n\n")
			for _, r := range s.XValidations {
				fmt.Fprintf(&b, "- %s\n", r.Message)
			}
		}
		for _, part := range []string{"spec", "status"} {
			p, ok := s.Properties[part]
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "\n### %s.%s\n\n| field | type | default | description |\n| --- | --- | --- | --- |\n", crd.Spec.Names.Kind, part)
			walk(&b, part, p)
		}
	}
	fmt.Print(b.String())
}

// Fields of embedded Kubernetes types are documented by Kubernetes; they are listed but not
// expanded.
var opaque = map[string]bool{
	"spec.resources": true, "spec.pod.affinity": true, "spec.pod.tolerations": true,
	"spec.pod.topologySpreadConstraints": true, "spec.pod.agentResources": true,
	"spec.imagePullSecrets": true, "status.conditions": true,
}

func walk(b *strings.Builder, path string, s apiextensionsv1.JSONSchemaProps) {
	keys := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	req := map[string]bool{}
	for _, r := range s.Required {
		req[r] = true
	}
	for _, k := range keys {
		p := s.Properties[k]
		fp := path + "." + k
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", fp, typeOf(p, req[k]), defaultOf(p), strings.ReplaceAll(describe(fp, p), "|", "\\|"))
		if opaque[fp] {
			continue
		}
		if p.Type == "object" && len(p.Properties) > 0 {
			walk(b, fp, p)
		}
		if p.Type == "array" && p.Items != nil && p.Items.Schema != nil && len(p.Items.Schema.Properties) > 0 {
			walk(b, fp+"[]", *p.Items.Schema)
		}
	}
}

func typeOf(p apiextensionsv1.JSONSchemaProps, required bool) string {
	typ := p.Type
	if p.Type == "array" && p.Items != nil && p.Items.Schema != nil {
		typ = "[]" + p.Items.Schema.Type
	}
	if p.XIntOrString {
		typ = "int-or-string"
	}
	if len(p.Enum) > 0 {
		var vals []string
		for _, e := range p.Enum {
			vals = append(vals, strings.Trim(string(e.Raw), `"`))
		}
		typ += " (" + strings.Join(vals, ", ") + ")"
	}
	if required {
		typ += ", required"
	}
	return typ
}

func defaultOf(p apiextensionsv1.JSONSchemaProps) string {
	if p.Default == nil {
		return ""
	}
	return "`" + string(p.Default.Raw) + "`"
}

func describe(fp string, p apiextensionsv1.JSONSchemaProps) string {
	desc := oneLine(p.Description)
	var rules []string
	if p.Minimum != nil {
		rules = append(rules, fmt.Sprintf("min %v", *p.Minimum))
	}
	if p.Maximum != nil {
		rules = append(rules, fmt.Sprintf("max %v", *p.Maximum))
	}
	for _, r := range p.XValidations {
		if strings.HasPrefix(r.Message, "spec.mysqld.config: ") && strings.HasSuffix(r.Message, "remove it") {
			continue // summarised below
		}
		if r.Message != "" {
			rules = append(rules, r.Message)
		}
	}
	if fp == "spec.mysqld.config" {
		rules = append(rules, fmt.Sprintf("refuses the %d operator-owned keys (listed in docs/configuration.md) in either spelling", countOwned(p)))
	}
	if len(rules) > 0 {
		desc += " *Rules: " + strings.Join(rules, "; ") + ".*"
	}
	return desc
}

func countOwned(p apiextensionsv1.JSONSchemaProps) int {
	n := 0
	for _, r := range p.XValidations {
		if strings.HasSuffix(r.Message, "remove it") {
			n++
		}
	}
	return n
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
