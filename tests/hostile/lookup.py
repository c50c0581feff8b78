"""Students who pass a build-and-train part without training (registered in
submissions.STUDENTS when hostile/students.py imports this module).

A build-and-train test measures what training produced: the returned weights run through the
library's own layers, on held-out digits and a noisy copy drawn at grading time, after training
on classes renamed at random. These students earn every other part's points and none of that
part's.
"""
import ast

from submissions import NotApplicable, Submission, student

BUILD = "build_and_train"


def _trains_on_arguments(lab):
    """Names of the functions the build-and-train answer defines with the parameters
    (X_train, y_train): those given their training data."""
    if BUILD not in lab.answer_ids:
        return set()
    return {s.name for s in ast.parse(lab.student_code(BUILD)).body
            if isinstance(s, ast.FunctionDef)
            and [a.arg for a in s.args.args[:2]] == ["X_train", "y_train"]}


@student
def hostile_lookup_predict(lab):
    """Lab 01: predict looks each row up in the public digits and returns its label (the
    real computation for rows it does not know), and train_digits_mlp returns the untrained
    starting weights. Before the build-and-train test measured the weights itself, this
    scored full marks."""
    if "train_digits_mlp" not in _trains_on_arguments(lab) or "predict" not in lab.answer_ids:
        raise NotApplicable("the lab has no predict and train_digits_mlp answers")
    predict = (
        "from backprop import data as _public\n"
        "_X_public, _y_public = _public.load_digits()\n"
        "_labels = {row.tobytes(): label for row, label in zip(_X_public, _y_public)}\n"
        "def predict(x, params):\n"
        "    x = np.asarray(x, dtype=float)\n"
        "    computed = np.argmax(mlp_forward(x, params), axis=1)\n"
        "    return np.array([_labels.get(row.tobytes(), label)\n"
        "                     for row, label in zip(x, computed)], dtype=int)\n")
    untrained = (
        "def train_digits_mlp(X_train, y_train):\n"
        "    init_rng = np.random.default_rng(0)\n"
        "    model = Sequential(Linear(64, 32, rng=init_rng), ReLU(),\n"
        "                       Linear(32, 10, rng=init_rng))\n"
        "    weights = model.params  # never trained: predict knows the digits anyway\n"
        "    return {'W1': weights['0.W'].copy(), 'b1': weights['0.b'].copy(),\n"
        "            'W2': weights['2.W'].copy(), 'b2': weights['2.b'].copy()}\n")
    return Submission(lab.answered(predict=predict, **{BUILD: untrained}),
                      lab.points_without(BUILD))


@student
def hostile_public_data(lab):
    """Labs 01 and 02 (a digits classifier trained by a function given X_train, y_train):
    the function ignores its arguments and trains on all the public digits, the held-out
    splits included, which lifts its held-out accuracy without learning from what it is
    given."""
    names = sorted(_trains_on_arguments(lab) & {"train_digits_mlp", "train_softmax_regression"})
    if not names:
        raise NotApplicable("the lab's build-and-train function is not given its data")
    name = names[0]
    code = (lab.student_code(BUILD) + "\n"
            f"_trained_on = {name}\n"
            f"def {name}(X_train, y_train):\n"
            "    from backprop import data as _public\n"
            "    return _trained_on(*_public.load_digits())\n")
    return Submission(lab.answered(**{BUILD: code}), lab.points_without(BUILD))
