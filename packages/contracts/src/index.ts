// The contracts shared by gwclusterd and gwctl. Filled in by the operator-plane work.
export {};
