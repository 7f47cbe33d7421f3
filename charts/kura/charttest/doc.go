// Package charttest holds the tests of the Kura Helm chart (charts/kura): rendering with the
// Helm SDK, strict lint, value validation, a server-side dry run of every rendered object
// against a real kube-apiserver, and the check that the chart's RBAC rules equal the rules
// generated from the controllers' markers.
package charttest
