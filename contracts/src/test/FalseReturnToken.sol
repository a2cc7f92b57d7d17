// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title False-returning token
/// @notice An ERC-20 whose transfers return false instead of reverting while `failing` is set, as some old
///         tokens do. Tests only.
contract FalseReturnToken is ERC20 {
    /// @notice When true, transfer and transferFrom move nothing and return false.
    bool public failing;

    constructor() ERC20("false-returning token", "FALSE") {}

    /// @notice Mints `amount` to `to`.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Switches the silent failures on or off.
    function setFailing(bool value) external {
        failing = value;
    }

    /// @inheritdoc ERC20
    function transfer(address to, uint256 value) public override returns (bool) {
        return failing ? false : super.transfer(to, value);
    }

    /// @inheritdoc ERC20
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        return failing ? false : super.transferFrom(from, to, value);
    }
}
