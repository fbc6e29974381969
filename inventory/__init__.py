"""The source of truth (installed as `egovlab.inventory`): a scenario file validated once into a
`Scenario`, its address plan, the one policy model and the exporters; every engine reads it."""
