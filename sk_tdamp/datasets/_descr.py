"""Descriptions (``DESCR``) of the data sets shipped with sk_tdamp."""

BOSTON_HOUSING_DESCR = """\
.. _boston_housing_dataset:

Boston housing data set
-----------------------

**Read this first.** This data set is shipped only so that results can be
compared with the published Bayesian-neural-network benchmarks that use it
(probabilistic backpropagation, MC dropout and the EM-TDAMP paper among
them). Do not use it to teach or to study housing markets. scikit-learn
removed its ``load_boston`` loader in version 1.2 for the reasons below;
the same reasons apply here.

Ethical and statistical problems
    - The feature ``B`` is ``1000 (Bk - 0.63)^2``, where ``Bk`` is the
      proportion of Black residents in the town. The original authors put it
      in the price model on the premise that racial self-segregation raised
      house prices (the parabola has its minimum at ``Bk = 0.63``). A model
      fitted on this feature learns that premise.
    - The transform cannot be inverted: a value of ``B`` corresponds to two
      possible ``Bk`` values on either side of 0.63, so the feature does not
      even carry the demographic quantity it is named after.
    - ``LSTAT`` ("lower status" of the population) mixes adults without high
      school education and male manual workers into one loosely defined
      index.
    - The target is top-coded: 16 tracts have ``MEDV`` exactly 50.0, the
      upper limit of the census table, so the largest prices are censored.
    - Later re-examination of the data (Gilley and Pace, 1996) found
      miscoded and censored values in the commonly distributed version,
      which is the version shipped here.
    - The data describe 1970 census tracts and say nothing reliable about
      housing prices today.

Alternatives for new work: the California housing data
(``sklearn.datasets.fetch_california_housing``) and the Ames housing data
(De Cock, 2011; on OpenML as ``house_prices``). Both have to be downloaded
through scikit-learn; sk_tdamp itself never downloads anything.

**Data set characteristics**

:Number of instances: 506 (one per census tract of the Boston area)
:Number of features: 13, all numeric (``CHAS`` is a 0/1 indicator and
    ``RAD`` an integer index)
:Target: ``MEDV``, median value of owner-occupied homes in thousands of
    US dollars (5.0 to 50.0)
:Missing values: none

:Features:
    - ``CRIM``     per-capita crime rate of the town
    - ``ZN``       share of residential land zoned for lots above 25,000 sq. ft.
    - ``INDUS``    share of non-retail business acres in the town
    - ``CHAS``     1 if the tract borders the Charles River, else 0
    - ``NOX``      nitric-oxide concentration (parts per 10 million)
    - ``RM``       average number of rooms per dwelling
    - ``AGE``      share of owner-occupied units built before 1940
    - ``DIS``      weighted distance to five Boston employment centres
    - ``RAD``      index of access to radial highways
    - ``TAX``      full-value property-tax rate per 10,000 US dollars
    - ``PTRATIO``  pupil-teacher ratio of the town
    - ``B``        ``1000 (Bk - 0.63)^2``, see the problems above
    - ``LSTAT``    percentage of "lower status" population, see above

**Provenance**

The data were assembled by Harrison and Rubinfeld (1978) to estimate
willingness to pay for clean air (through ``NOX``) with a hedonic price
model. They were later distributed through the StatLib archive at Carnegie
Mellon University and the UCI Machine Learning Repository. The rows here are
in the order of that common version, which is also the order used by the
benchmark train/test splits of Hernandez-Lobato and Adams (2015), so row
indices from those splits can be applied directly.

**References**

- D. Harrison and D. L. Rubinfeld, "Hedonic housing prices and the demand
  for clean air", Journal of Environmental Economics and Management 5(1),
  81-102, 1978.
- O. W. Gilley and R. K. Pace, "On the Harrison and Rubinfeld data",
  Journal of Environmental Economics and Management 31(3), 403-405, 1996.
- D. De Cock, "Ames, Iowa: alternative to the Boston housing data as an
  end of semester regression project", Journal of Statistics Education
  19(3), 2011.
- J. M. Hernandez-Lobato and R. P. Adams, "Probabilistic backpropagation
  for scalable learning of Bayesian neural networks", ICML 2015.
"""

MNIST_5K_DESCR = """\
.. _mnist_5k_dataset:

MNIST 5k subset
---------------

**Rows are sorted by class.** The first 500 rows are all zeros, the next
500 all ones, and so on up to nine. Taking the first or last rows as a test
set therefore gives a test set of one or two digits. Always shuffle, and
preferably split with stratification, for example
``train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)``.
Minibatch training (as in EM-TDAMP) must also see the rows in shuffled
order.

**Data set characteristics**

:Number of instances: 5,000, exactly 500 per digit 0-9
:Number of features: 784, the pixels of a 28 x 28 grayscale image in
    row-major order (feature ``pixel_r_c`` is row ``r``, column ``c``)
:Feature values: raw pixel intensities, integers from 0 (background) to
    255 (full ink), returned as float64 **without rescaling**; divide by
    255 (or standardize) before fitting a network
:Target: the digit, an integer from 0 to 9
:Missing values: none

**Provenance**

A subset of the MNIST database of handwritten digits (LeCun, Cortes and
Burges), which has 60,000 training and 10,000 test images built from NIST
Special Databases 1 and 3: each digit was size-normalized to fit a 20 x 20
box, anti-aliased, and centred by its centre of mass in a 28 x 28 image.
The subset keeps 500 images of each digit; which of the original training
or test images were taken is not recorded, so do not mix it with the full
MNIST test set for evaluation. It is stored in the package in the IDX
format of the original distribution (gzip-compressed) and read with
:func:`sk_tdamp.datasets.load_idx`.

**References**

- Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning
  applied to document recognition", Proceedings of the IEEE 86(11),
  2278-2324, 1998.
"""
