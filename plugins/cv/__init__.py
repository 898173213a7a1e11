"""Built-in cross-validation schemes (family ``cv``): name -> module."""

PLUGINS = {
    "holdout": ".holdout",
    "kfold": ".kfold",
    "stratified_kfold": ".stratified_kfold",
    "group_kfold": ".group_kfold",
    "stratified_group_kfold": ".stratified_group_kfold",
    "leave_one_group_out": ".leave_one_group_out",
    "gait_protocol": ".gait_protocol",
}
